"""The pipeline job on the inference queues: ``inference.pipeline`` runs one pipeline run (a ``JobTask``).

Thin, as tasks are here: claim the job, let ``apps.inference.pipelines.run_pipeline`` run the steps and record
the outcome (it also tells a waiting synchronous caller, which is why it records, not the base class).
"""

from __future__ import annotations

from typing import Any

from apps.core.job_services import claim_job
from apps.core.jobs import JobQueue
from apps.core.tasks import JobTask, register_job_task
from apps.inference import pipelines


class RunPipeline(JobTask):
    """One run of a pipeline: every step in order on this worker (``pipelines.run_pipeline``)."""

    name = "inference.pipeline"
    kind = pipelines.PIPELINE_KIND
    label = "Pipeline run"
    creator_keeps_access = True  # a prediction stays its creator's own (docs/api/jobs.md)
    job_queue = JobQueue.INFERENCE_CPU
    max_attempts = 2
    job_time_limit = pipelines.DEFAULT_TIME_LIMIT
    progress_interval = 1.0
    audit_creation = False  # runs are Job rows, not audit events

    def run(self, job_id: int, **kwargs: Any) -> str:
        job = claim_job(job_id)
        if job is None:
            return "skipped"
        return pipelines.run_pipeline(job)


run_pipeline = register_job_task(RunPipeline)

__all__ = ["run_pipeline"]
