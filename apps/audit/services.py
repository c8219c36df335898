"""Recording audit events. Every state change calls ``record_event`` inside its own transaction."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.utils import timezone

from apps.audit.context import current_request
from apps.audit.models import AuditChain, AuditEvent


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
            actor_label=actor_label if actor_label is not None else (actor.email if signed_in else ""),
            action=action,
            ip=context.ip if context else None,
            user_agent=context.user_agent if context else "",
            diff=diff or {},
            metadata=metadata or {},
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
