from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from apps.core import (
            checks,  # noqa: F401 - registers the job settings' system checks
            shortlived,
        )

        # A change to what a cached token or access decision reads clears the caches (apps/core/shortlived.py).
        for signal in (post_save, post_delete, m2m_changed):
            signal.connect(shortlived.on_change, dispatch_uid=f"shortlived-{id(signal)}")
