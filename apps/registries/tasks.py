"""Registry jobs: a sync (on the ``sync`` queue) and the scheduler's periodic tick."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from apps.core.job_services import ProgressReporter
from apps.core.jobs import Job, JobQueue
from apps.core.tasks import JobTask, register_job_task
from apps.registries import services
from apps.registries.models import RegistrySync


class SyncRegistry(JobTask):
    """Sync one registry into its organization's catalog (apps/registries/sync.py)."""

    name = "registries.sync_registry"
    kind = services.SYNC_KIND
    job_queue = JobQueue.SYNC
    progress_interval = 0.5

    def execute(self, job: Job, progress: ProgressReporter) -> Any:
        sync = RegistrySync.objects.select_related("registry__organization", "job__creator").get(job=job)
        return services.run_registry_sync(sync, progress)


sync_registry = register_job_task(SyncRegistry)


@shared_task(name="registries.start_due_syncs", ignore_result=True)
def start_due_syncs_task() -> int:
    """Periodic (celery beat): start the syncs whose schedule has come."""
    return services.start_due_syncs()
