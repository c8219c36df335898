"""The performance-card job: ``inference.performance`` measures one version on the worker that takes it.

Thin: ``apps.inference.performance.measure`` times the version, ``record_card`` writes its card (one per job),
the ``JobTask`` base records the job's outcome with the card's figures as its result.
"""

from __future__ import annotations

from typing import Any

from apps.core.job_services import ProgressReporter
from apps.core.jobs import Job, JobQueue
from apps.core.tasks import JobTask, register_job_task
from apps.inference import performance


class MeasurePerformance(JobTask):
    """Measure a version (latency at batch 1 and its best batch size, throughput, memory, provider)."""

    name = "inference.performance"
    kind = performance.PERFORMANCE_KIND
    job_queue = JobQueue.CHECKS
    max_attempts = 2
    job_time_limit = 120  # start_performance_card passes INFERENCE_PERFORMANCE_TIME_LIMIT_SECONDS

    def execute(self, job: Job, progress: ProgressReporter) -> dict[str, Any]:
        measurement = performance.measure(job, progress)
        card = performance.record_card(job, measurement)
        return performance.card_summary(card)


measure_performance = register_job_task(MeasurePerformance)

__all__ = ["measure_performance"]
