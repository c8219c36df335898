"""Recording audit events, and retention. Every state change calls ``record_event`` inside its own transaction."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Min
from django.utils import timezone

from apps.audit.context import current_request
from apps.audit.models import AuditChain, AuditEvent

CHECKPOINT_ACTION = "audit.checkpoint"
RETENTION_ACTOR_LABEL = "system: retention"
# The PostgreSQL setting that the append-only trigger (migration 0003) checks before it lets a DELETE through.
PRUNE_SETTING = "gpux.audit_prune"


def _lock_chain(organization_id: int | None) -> AuditChain:
    """The chain's head row, locked until the surrounding transaction ends (creating it on first use)."""
    key = AuditChain.key_for(organization_id)
    chain, _ = AuditChain.objects.get_or_create(key=key, defaults={"organization_id": organization_id})
    return AuditChain.objects.select_for_update().get(pk=chain.pk)


def target_fields(target: models.Model | None) -> dict[str, str]:
    if target is None:
        return {"target_type": "", "target_id": "", "target_label": ""}
    ident = getattr(target, "uuid", None) or getattr(target, "slug", None) or target.pk
    return {
        "target_type": target._meta.label_lower,
        "target_id": str(ident),
        "target_label": str(target)[:300],
    }


def _json_ready(value: dict | None) -> dict:
    """What the JSON column will give back when read (datetimes, UUIDs, decimals as text): hashed as stored."""
    return json.loads(json.dumps(value or {}, cls=DjangoJSONEncoder))


def _clean_ip(value: str | None) -> str | None:
    """A valid address or None: a malformed proxy header must not make recording (and the request) fail."""
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if getattr(address, "scope_id", None):
        address = ipaddress.ip_address(str(address).split("%", 1)[0])
    return str(address)


def record_event(
    *,
    action: str,
    organization: Any = None,
    actor: Any = None,
    target: models.Model | None = None,
    diff: dict | None = None,
    metadata: dict | None = None,
    actor_label: str | None = None,
    kind: str = AuditEvent.Kind.EVENT,
) -> AuditEvent:
    """Append one event to the organization's chain (or the platform chain when ``organization`` is None).

    Runs in (or opens) a transaction and serializes on the chain's head row, so concurrent writers queue up
    instead of forking the chain. The request's IP and user agent come from AuditContextMiddleware.
    ``diff`` and ``metadata`` are stored as JSON (datetimes and UUIDs become text).
    """
    organization_id = getattr(organization, "pk", organization)
    signed_in = actor is not None and getattr(actor, "is_authenticated", False)
    context = current_request.get()
    with transaction.atomic():
        chain = _lock_chain(organization_id)
        event = AuditEvent(
            chain=chain,
            seq=chain.head_seq + 1,
            kind=kind,
            organization_id=organization_id,
            actor=actor if signed_in else None,
            actor_label=(actor_label if actor_label is not None else (actor.email if signed_in else ""))[:254],
            action=action,
            ip=_clean_ip(context.ip) if context else None,
            user_agent=context.user_agent[:500] if context else "",
            diff=_json_ready(diff),
            metadata=_json_ready(metadata),
            created_at=timezone.now(),
            prev_hash=chain.head_hash,
            **target_fields(target),
        )
        event.hash = event.compute_hash()
        event.save()
        AuditChain.objects.filter(pk=chain.pk).update(head_seq=event.seq, head_hash=event.hash)
    return event


def changes(instance: models.Model, before: dict[str, Any], fields: list[str]) -> dict[str, list[Any]]:
    """A diff ``{field: [old, new]}`` of ``fields`` between ``before`` and the instance's current values."""
    diff = {}
    for name in fields:
        new = getattr(instance, name)
        if before.get(name) != new:
            diff[name] = [before.get(name), new]
    return diff


# --- retention ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PruneResult:
    """What one chain's pruning did: how many events went, and the checkpoint that now stands for them."""

    chain_key: str
    deleted: int
    last_deleted_seq: int | None = None
    checkpoint: AuditEvent | None = None


def prune_audit_events(
    *,
    older_than: datetime,
    organization_id: int | None = None,
    platform: bool = False,
    dry_run: bool = False,
) -> PruneResult:
    """Delete one chain's events recorded before ``older_than``, leaving a checkpoint so the chain still verifies.

    Name the chain with ``organization_id`` or ``platform=True``. In one transaction holding the chain's head
    lock: find D, the last event before the first one recorded at or after ``older_than``; append a checkpoint
    event carrying D's seq and hash and the number of events removed; then delete every event with seq ≤ D. The
    deletion is a contiguous prefix of the chain, and the checkpoint being written always comes after it, so an
    older checkpoint is only ever deleted once a newer one supersedes it. The verifier starts from the newest
    checkpoint and checks that the first remaining event links to the hash it carries. ``dry_run`` counts
    without changing anything.
    """
    if platform == (organization_id is not None):
        raise ValidationError(
            {"organization_id": ["Name exactly one chain: an organization id, or platform=True."]}, code="invalid"
        )
    if timezone.is_naive(older_than):
        raise ValidationError({"older_than": ["Give an aware datetime (with a time zone)."]}, code="invalid")
    key = AuditChain.key_for(None if platform else organization_id)
    if not AuditChain.objects.filter(key=key).exists():
        return PruneResult(chain_key=key, deleted=0)
    with transaction.atomic():
        chain = _lock_chain(None if platform else organization_id)
        events = AuditEvent.objects.filter(chain=chain)
        # Stop at the first event young enough to keep: only a contiguous prefix of the chain is ever deleted,
        # and no event younger than ``older_than`` is, even if a clock step made an older one follow it.
        first_kept = events.filter(created_at__gte=older_than).aggregate(seq=Min("seq"))["seq"]
        prefix = events if first_kept is None else events.filter(seq__lt=first_kept)
        last = prefix.order_by("-seq").values("seq", "hash").first()
        if last is None:
            return PruneResult(chain_key=key, deleted=0)
        doomed = events.filter(seq__lte=last["seq"])
        count = doomed.count()
        if dry_run:
            return PruneResult(chain_key=key, deleted=count, last_deleted_seq=last["seq"])
        first_seq = doomed.order_by("seq").values_list("seq", flat=True).first()
        checkpoint = record_event(
            action=CHECKPOINT_ACTION,
            kind=AuditEvent.Kind.CHECKPOINT,
            organization=chain.organization_id,
            actor_label=RETENTION_ACTOR_LABEL,
            metadata={
                "last_deleted_seq": last["seq"],
                "last_deleted_hash": last["hash"],
                "first_deleted_seq": first_seq,
                "deleted_count": count,
                "older_than": older_than.astimezone(UTC).isoformat(timespec="microseconds"),
            },
        )
        with _prune_allowed():
            deleted = doomed._raw_delete(doomed.db)
    return PruneResult(chain_key=key, deleted=deleted, last_deleted_seq=last["seq"], checkpoint=checkpoint)


def prune_all_chains(*, older_than: datetime, dry_run: bool = False) -> list[PruneResult]:
    """``prune_audit_events`` for every chain (each in its own transaction); the chains that lost events."""
    results = []
    for key, organization_id in AuditChain.objects.order_by("key").values_list("key", "organization_id"):
        if key == AuditChain.PLATFORM_KEY:
            result = prune_audit_events(older_than=older_than, platform=True, dry_run=dry_run)
        else:
            result = prune_audit_events(older_than=older_than, organization_id=organization_id, dry_run=dry_run)
        if result.deleted:
            results.append(result)
    return results


@contextmanager
def _prune_allowed() -> Iterator[None]:
    """Inside the current transaction only, tell the PostgreSQL trigger that retention is deleting."""
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', true)", [PRUNE_SETTING])
    yield
    if postgresql:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'off', true)", [PRUNE_SETTING])
