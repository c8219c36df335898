"""Recording usage. Callers pass what was used; the row is written in its own small transaction."""

from __future__ import annotations

from typing import Any

from django.db import models

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
    """Write one usage event for ``subject`` (any model with a ``uuid``) owned by ``organization``."""
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
