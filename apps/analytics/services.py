"""Reading usage: whether someone used something before (the yank rule). Recording: ``apps.analytics.usage``."""

from __future__ import annotations

from typing import Any

from django.db import models

from apps.analytics import usage
from apps.analytics.models import UsageEvent, UsageKind


def _signed_in(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def has_used(*, actor: Any, subject: models.Model, kind: str = UsageKind.DOWNLOAD) -> bool:
    """Whether ``actor`` (signed in) has a usage event of ``kind`` for ``subject``: e.g. downloaded it before.
    A download the drain has not written yet counts too (the stream side remembers it for a day)."""
    if not _signed_in(actor):
        return False
    subject_id = str(getattr(subject, "uuid", subject.pk))
    if UsageEvent.objects.filter(
        actor=actor,
        kind=kind,
        subject_type=subject._meta.label_lower,
        subject_id=subject_id,
        status_code__in=(200, 206, 302),
    ).exists():
        return True
    return kind == UsageKind.DOWNLOAD and usage.recently_downloaded(user_id=actor.pk, subject_id=subject_id)
