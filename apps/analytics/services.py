"""Recording usage. Callers pass what was used; the row is written in its own small transaction."""

from __future__ import annotations

from typing import Any

from django.db import connection, models, transaction

from apps.analytics.models import UsageEvent, UsageKind


def _signed_in(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def record_usage(
    *,
    kind: str,
    organization: Any,
    subject: models.Model,
    actor: Any = None,
    subject_label: str = "",
    path: str = "",
    blob_sha256: str = "",
    bytes_sent: int = 0,
    status_code: int = 200,
    metadata: dict | None = None,
) -> UsageEvent:
    """Write one usage event for ``subject`` (any model with a ``uuid``) owned by ``organization``.

    Written on its own (outside a caller's transaction) it commits without waiting for PostgreSQL to flush its
    write-ahead log: a download must not wait on an analytics row's disk sync, and a crash can at most lose the
    last few hundred milliseconds of usage events, never an audit event (those commit synchronously).
    """
    fields = dict(locals())
    if connection.in_atomic_block or connection.vendor != "postgresql":
        return _create_usage_event(**fields)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        return _create_usage_event(**fields)


def _create_usage_event(
    *,
    kind: str,
    organization: Any,
    subject: models.Model,
    actor: Any,
    subject_label: str,
    path: str,
    blob_sha256: str,
    bytes_sent: int,
    status_code: int,
    metadata: dict | None,
) -> UsageEvent:
    return UsageEvent.objects.create(
        kind=kind,
        organization_id=getattr(organization, "pk", organization),
        actor=actor if _signed_in(actor) else None,
        subject_type=subject._meta.label_lower,
        subject_id=str(getattr(subject, "uuid", subject.pk)),
        subject_label=subject_label[:300],
        path=path[:500],
        blob_sha256=blob_sha256,
        bytes=bytes_sent,
        status_code=status_code,
        metadata=metadata or {},
    )


def has_used(*, actor: Any, subject: models.Model, kind: str = UsageKind.DOWNLOAD) -> bool:
    """Whether ``actor`` (signed in) has a usage event of ``kind`` for ``subject``: e.g. downloaded it before."""
    if not _signed_in(actor):
        return False
    return UsageEvent.objects.filter(
        actor=actor,
        kind=kind,
        subject_type=subject._meta.label_lower,
        subject_id=str(getattr(subject, "uuid", subject.pk)),
        status_code__in=(200, 206, 302),
    ).exists()
