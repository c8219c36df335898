"""The marketplace's job kinds: ``marketplace.validate_version`` (see ``apps.marketplace.validation``)."""

from __future__ import annotations

from typing import Any

from apps.core.job_services import ProgressReporter
from apps.core.jobs import Job, JobQueue
from apps.core.tasks import JobTask, register_job_task
from apps.marketplace.validation import VALIDATE_JOB_KIND, run_validation


class ValidateVersion(JobTask):
    """Validate one draft version's ONNX model in a limited child process and record the outcome on it.

    Started by ``start_validation`` (files added or removed, or on request), not through the jobs API.
    The child's own timeout (``ONNX_VALIDATION_TIMEOUT_S``) ends well before the job's time limit.
    """

    name = "marketplace.validate_version"
    kind = VALIDATE_JOB_KIND
    label = "Validation"
    job_queue = JobQueue.CHECKS
    job_time_limit = 1800
    progress_interval = 1.0
    user_startable = False

    def execute(self, job: Job, progress: ProgressReporter) -> dict[str, Any]:
        return run_validation(job, progress)


validate_version = register_job_task(ValidateVersion)
