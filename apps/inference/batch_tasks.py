"""The batch job's Celery task (``inference.batch``): one task for the whole file, run in chunks of rows.

Thin, as tasks are here: the JobTask base claims the job and records its outcome; the work is
``apps.inference.batch.run_batch_inference``, which resumes at ``rows_done`` when a later attempt runs a job whose
worker was lost (the reaper re-sends it). Imported by ``apps.inference.tasks`` so that workers register it.
"""

from __future__ import annotations

from typing import Any

from apps.core.job_services import ProgressReporter
from apps.core.jobs import DEFAULT_TIME_LIMIT, Job, JobQueue, JobStatus
from apps.core.tasks import JobTask, register_job_task
from apps.inference.batch import BATCH_KIND, run_batch_inference


class RunBatchInference(JobTask):
    """Run a batch job's rows through its model version, chunk by chunk, resumable after a crash."""

    name = "inference.batch"
    kind = BATCH_KIND
    label = "Batch prediction"
    creator_keeps_access = True  # a prediction stays its creator's own (docs/api/jobs.md)
    job_queue = JobQueue.INFERENCE_CPU
    max_attempts = 3
    job_time_limit = DEFAULT_TIME_LIMIT  # start_batch_inference passes INFERENCE_BATCH_TIME_LIMIT_SECONDS
    progress_interval = 1.0

    def execute(self, job: Job, progress: ProgressReporter) -> dict[str, Any]:
        return run_batch_inference(job, progress)

    def after_outcome(self, job: Job, status: str) -> None:
        """After a memory failure the pool process may be left in a bad state: leave so the pool replaces it."""
        from apps.inference.serving import memory_message, replace_this_process

        if status == JobStatus.FAILED and memory_message() in (job.error or ""):
            replace_this_process()


run_batch = register_job_task(RunBatchInference)

__all__ = ["RunBatchInference", "run_batch"]
