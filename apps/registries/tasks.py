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
    label = "Registry sync"
    job_queue = JobQueue.SYNC
    progress_interval = 0.5

    def execute(self, job: Job, progress: ProgressReporter) -> Any:
        sync = RegistrySync.objects.select_related("registry__organization", "job__creator").get(job=job)
        result = services.run_registry_sync(sync, progress)
        # The last word is the whole run's (the progress line may have been written pages before the end).
        sync.refresh_from_db()
        progress(1.0, sync.summary())
        return result


sync_registry = register_job_task(SyncRegistry)


@shared_task(name="registries.start_due_syncs", ignore_result=True)
def start_due_syncs_task() -> int:
    """Periodic (celery beat): queue the starts of the syncs whose schedule has come."""
    return len(services.start_due_syncs())


@shared_task(name="registries.start_scheduled_syncs", ignore_result=True, acks_late=True)
def start_scheduled_syncs(registry_ids: list[int]) -> int:
    """Write the scheduled syncs' jobs and queue them (on the ``sync`` queue); a registry already syncing, gone
    or disabled is skipped. Run again after a lost worker, it starts nothing twice."""
    return sum(services.start_scheduled_sync_of(registry_id) is not None for registry_id in registry_ids)
