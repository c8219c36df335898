from __future__ import annotations

from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "apps.marketplace"
    label = "marketplace"
    verbose_name = "Model catalog"

    def ready(self) -> None:
        # The purge job kind lives outside tasks.py; importing it registers the kind with the job registry.
        from apps.marketplace import purge  # noqa: F401
