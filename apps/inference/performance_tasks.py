"""The performance-card job: ``inference.performance`` measures one version on the worker that takes it.

Thin: ``apps.inference.performance.measure`` times the version, ``record_card`` writes its card (one per job),
the ``JobTask`` base records the job's outcome with the card's figures as its result.
"""

from __future__ import annotations

from typing import Any

from apps.core.job_services import ProgressReporter
from apps.core.jobs import Job, JobQueue, JobStatus
from apps.core.tasks import JobTask, register_job_task
from apps.inference import performance


class MeasurePerformance(JobTask):
    """Measure a version (latency at batch 1 and its best batch size, throughput, memory, provider)."""

    name = "inference.performance"
    kind = performance.PERFORMANCE_KIND
    label = "Benchmark"
    job_queue = JobQueue.CHECKS
    max_attempts = 2
    job_time_limit = 120  # start_performance_card passes INFERENCE_PERFORMANCE_TIME_LIMIT_SECONDS

    def execute(self, job: Job, progress: ProgressReporter) -> dict[str, Any]:
        from apps.inference.serving import MemoryLimitExceeded, memory_failure, memory_message

        try:
            measurement = performance.measure(job, progress)
        except Exception as exc:
            if memory_failure(exc):  # the model asked for more than the worker's limit: say so
                raise MemoryLimitExceeded(memory_message()) from exc
            raise
        card = performance.record_card(job, measurement)
        return performance.card_summary(card)

    def after_outcome(self, job: Job, status: str) -> None:
        """After a memory failure the process may be left in a bad state: leave so that the pool replaces it."""
        from apps.inference.serving import memory_message, replace_this_process

        if status == JobStatus.FAILED and memory_message() in (job.error or ""):
            replace_this_process()


measure_performance = register_job_task(MeasurePerformance)

__all__ = ["measure_performance"]
