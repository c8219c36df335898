"""What record_event hashes is what the database gives back, so a fresh event always verifies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from apps.audit.context import RequestContext, current_request
from apps.audit.models import AuditEvent
from apps.audit.services import record_event
from apps.audit.verification import verify_chain
from tests.audit.conftest import chain_key

pytestmark = pytest.mark.django_db


def recorded_from(ip: str, org, **kwargs) -> AuditEvent:
    token = current_request.set(RequestContext(ip=ip, user_agent="ua"))
    try:
        return record_event(action="thing.done", organization=org, **kwargs)
    finally:
        current_request.reset(token)


def test_an_ipv6_address_spelled_long_still_verifies(org):
    event = recorded_from("2001:0db8:0000:0000:0000:0000:0000:0001", org)

    assert AuditEvent.objects.get(pk=event.pk).ip == "2001:db8::1"
    assert verify_chain(chain_key(org)).ok


def test_a_malformed_client_address_is_dropped_not_a_failure(org):
    event = recorded_from("not-an-ip, 10.0.0.1", org)

    assert event.ip is None
    assert verify_chain(chain_key(org)).ok


def test_datetimes_and_uuids_in_a_diff_are_stored_as_text_and_verify(org):
    when, ident = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.uuid4()

    event = record_event(
        action="thing.done", organization=org, diff={"expires_at": [None, when]}, metadata={"id": ident}
    )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.diff == {"expires_at": [None, "2026-01-02T03:04:05Z"]}
    assert stored.metadata == {"id": str(ident)}
    assert verify_chain(chain_key(org)).ok


def test_each_event_links_to_the_one_before(org):
    first = record_event(action="a", organization=org)
    second = record_event(action="b", organization=org)

    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    assert (first.seq, second.seq) == (1, 2)
