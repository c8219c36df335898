from __future__ import annotations

from django.apps import AppConfig


class RegistriesConfig(AppConfig):
    name = "apps.registries"
    label = "registries"
    verbose_name = "Registries"

    def ready(self) -> None:
        # A synced model in metadata mode lists files its registry still holds: downloads fetch them on first use.
        from apps.marketplace import downloads
        from apps.registries.fetch import fetch_on_first_use

        if fetch_on_first_use not in downloads.missing_file_sources:
            downloads.missing_file_sources.append(fetch_on_first_use)

        # The jobs pages name the registry a sync ran for, and link its run's page.
        from apps.core.job_services import register_job_describer
        from apps.registries.views import describe_sync_jobs

        register_job_describer(describe_sync_jobs)
