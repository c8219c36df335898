"""Helpers for the audit tests: write events, backdate some, and tamper with rows as an attacker with SQL would.

Tampering goes around the append-only trigger (migration 0003) the way a database superuser could:
``SET LOCAL session_replication_role = replica`` turns ordinary triggers off for the rest of the test's
transaction; ``origin`` turns them back on. The test database user (postgres) is a superuser.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import AuditChain, AuditEvent
from apps.audit.services import _lock_chain, record_event


def chain_key(organization) -> str:
    return AuditChain.key_for(getattr(organization, "pk", organization))


def record_many(organization, count: int, *, action: str = "thing.changed", actor=None) -> list[AuditEvent]:
    return [
        record_event(action=action, organization=organization, actor=actor, metadata={"n": i}) for i in range(count)
    ]


def record_backdated(organization, *, days_ago: list[float], action: str = "old.thing") -> list[AuditEvent]:
    """Append events dated ``days_ago`` in the past (oldest first), hashed and linked exactly as record_event does.

    record_event always stamps "now"; retention needs old events, and this is the one place that writes them.
    """
    events = []
    with transaction.atomic():
        chain = _lock_chain(getattr(organization, "pk", organization))
        for i, days in enumerate(days_ago):
            event = AuditEvent(
                chain=chain,
                seq=chain.head_seq + 1,
                organization_id=chain.organization_id,
                action=action,
                metadata={"i": i},
                created_at=timezone.now() - timedelta(days=days),
                prev_hash=chain.head_hash,
            )
            event.hash = event.compute_hash()
            event.save()
            chain.head_seq, chain.head_hash = event.seq, event.hash
            events.append(event)
        AuditChain.objects.filter(pk=chain.pk).update(head_seq=chain.head_seq, head_hash=chain.head_hash)
    return events


def tamper(sql: str, params: list | tuple = ()) -> int:
    """Run ``sql`` with the append-only trigger bypassed (as a superuser could); returns the rows touched."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            cursor.execute(sql, params)
            return cursor.rowcount
        finally:
            cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth's login rate limits count in the cache (Redis here), which outlives a test: start each at zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def org(world):
    return world.org
