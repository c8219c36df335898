"""The job kind ``marketplace.complete_upload``: verify a large upload session's size and SHA-256 and add its file
to the version, outside the web request (``apps.marketplace.uploads.start_completion_job`` starts it when
``POST .../uploads/{uuid}/complete/`` is asked for a session above ``MARKETPLACE_SYNC_COMPLETE_MAX_BYTES``).

Registered from ``MarketplaceConfig.ready`` (like the purge), so the web process and the worker both know it.
"""

from __future__ import annotations

from typing import Any

from apps.core.job_services import ProgressReporter
from apps.core.jobs import Job
from apps.core.tasks import JobTask, register_job_task
from apps.marketplace.uploads import COMPLETE_JOB_KIND, run_completion_job


class CompleteUpload(JobTask):
    """Read the spool file once (progress and heartbeat per second), then add it to the version exactly as a
    request-sized completion does (``uploads.finish_upload_session``); started by the complete route, not through
    the jobs API. The time limit is given per job, sized to the file."""

    name = "marketplace.complete_upload"
    kind = COMPLETE_JOB_KIND
    label = "Upload processing"
    job_queue = "default"
    progress_interval = 1.0
    user_startable = False

    def execute(self, job: Job, progress: ProgressReporter) -> dict[str, Any]:
        return run_completion_job(job, progress)


complete_upload = register_job_task(CompleteUpload)
