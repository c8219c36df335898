from __future__ import annotations

from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "apps.marketplace"
    label = "marketplace"
    verbose_name = "Model catalog"

    def ready(self) -> None:
        # The purge and upload-completion job kinds live outside tasks.py; importing them registers the kinds.
        from apps.marketplace import purge, upload_jobs  # noqa: F401
