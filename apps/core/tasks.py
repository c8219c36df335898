"""``JobTask``, the base of every job's Celery task, and the periodic reaper.

A job kind is a JobTask subclass with a ``kind`` and an ``execute(job, progress)`` method, registered once::

    class ExportAuditTrail(JobTask):
        name = "audit.export_audit_trail"
        kind = "audit.export"

        def execute(self, job, progress):
            ...  # call a service; report progress(fraction, message); return a JSON result

    export_audit_trail = register_job_task(ExportAuditTrail)

The message carries only the job id. ``run`` claims the row (a job claimed twice runs once), calls
``execute`` and records the result, or the error and its traceback, for the attempt that claimed it.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, ClassVar

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.worker import state as worker_state
from celery.worker.request import Request
from django.db import connection
from rest_framework import serializers

from apps.core.access import TokenScope
from apps.core.job_services import (
    HARD_LIMIT_MARGIN,
    JobClaimLost,
    ProgressReporter,
    claim_job,
    fail_job,
    fail_past_hard_limit,
    finish_job,
    reap_stale_jobs,
    register_job_kind,
)
from apps.core.jobs import DEFAULT_MAX_ATTEMPTS, DEFAULT_TIME_LIMIT, Job, JobQueue, JobStatus
from apps.core.lookup import ADMINISTER

logger = logging.getLogger(__name__)


class JobRequest(Request):
    """A job's message on the worker: when the hard time limit kills the pool process running it, the worker's
    main process fails the job saying that it ran past its time limit (otherwise it would stay ``running`` until
    the reaper, run again into the same limit and end "Worker lost N times")."""

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        if soft or worker_state.should_terminate or not self.args:
            return
        try:
            job = fail_past_hard_limit(int(self.args[0]), timeout)
            if job is not None:
                self.task.after_outcome(job, JobStatus.FAILED)
        except Exception:  # the main process must keep serving: the reaper still ends the job
            logger.exception("Could not record the hard time limit of job %s", self.args[0])
        finally:
            connection.close()  # the main process forks pool processes: it keeps no database connection


class JobTask(Task):
    """The Celery side of a job kind: claim, execute, record. Subclasses set ``kind`` and write ``execute``.

    Late acknowledgement and ``reject_on_worker_lost`` keep a message until its attempt ends; JSON only;
    soft and hard time limits per job (``Job.time_limit``). Attempts are counted on the row and the reaper
    re-runs a job whose worker died, so Celery's own retries are not used.
    """

    kind: ClassVar[str] = ""
    # What people call a job of this kind in pages ("Validation", "Prediction"): see ``job_services.kind_label``.
    label: ClassVar[str] = ""
    job_queue: ClassVar[str] = JobQueue.DEFAULT
    max_attempts: ClassVar[int] = DEFAULT_MAX_ATTEMPTS
    job_time_limit: ClassVar[int] = DEFAULT_TIME_LIMIT
    progress_interval: ClassVar[float] = 1.0
    # Whether people may start this kind through the API and pages, and what it takes.
    user_startable: ClassVar[bool] = False
    # Whether a job of this kind is its creator's own (a prediction) and stays visible to them after they leave
    # the organization; otherwise (an audit export, a sync) it is the organization's and goes with the membership.
    creator_keeps_access: ClassVar[bool] = False
    # What starting one takes: a restrict() action on the organization (apps/core/lookup.py: "administer", "audit",
    # "create"...; its least role is Organization.access's) and a token scope.
    organization_action: ClassVar[str] = ADMINISTER
    required_scope: ClassVar[TokenScope] = TokenScope.ADMIN
    # Whether starting a job records ``job.created`` in the audit trail (not for predictions and pipeline runs:
    # their Job rows are their record, and they are too many for a hash chain that serializes its writers).
    audit_creation: ClassVar[bool] = True

    Request = JobRequest
    acks_late = True
    reject_on_worker_lost = True
    serializer = "json"
    ignore_result = True
    # Used when a message is sent without limits of its own; send_job gives each attempt its job's limits.
    soft_time_limit = DEFAULT_TIME_LIMIT
    time_limit = DEFAULT_TIME_LIMIT + HARD_LIMIT_MARGIN

    def run(self, job_id: int) -> str:
        job = claim_job(job_id)
        if job is None:
            logger.info("Job %s is not queued (already claimed, finished or cancelled): nothing to do.", job_id)
            return "skipped"
        progress = ProgressReporter(job, interval=self.progress_interval)
        try:
            result = self.execute(job, progress)
        except JobClaimLost:
            logger.warning("Job %s attempt %s lost its claim; stopping without recording.", job.uuid, job.attempts)
            return "lost"
        except SoftTimeLimitExceeded:
            error, trace = f"Ran past its time limit of {job.time_limit} s and was stopped.", traceback.format_exc()
        except Exception as exc:
            logger.exception("Job %s (%s) failed", job.uuid, job.kind)
            error, trace = f"{type(exc).__name__}: {exc}", traceback.format_exc()
        else:
            status = finish_job(job, result)
            if status:
                self.after_outcome(job, status)
            return status or "lost"
        if fail_job(job, error=error, traceback=trace):
            job.error = error
            self.after_outcome(job, JobStatus.FAILED)
            return JobStatus.FAILED
        return "lost"

    def execute(self, job: Job, progress: ProgressReporter) -> Any:
        """Do the work of ``job``; call ``progress(fraction, message)`` as it goes; return a JSON result."""
        raise NotImplementedError

    def after_outcome(self, job: Job, status: str) -> None:
        """Called once the attempt's outcome (``status``) is recorded: tell whoever waits (a hook; no-op here)."""

    def message_kwargs(self, job: Job) -> dict[str, Any] | None:
        """Keyword arguments the job's message carries besides its id (a batching task groups by them)."""
        return None

    def clean_params(self, params: Any, *, organization: Any, user: Any) -> dict:
        """Validate and normalise the parameters a person gave (the API nests errors under ``params``).

        Raise DRF's ``ValidationError`` with a dict naming the parameter; the default takes any JSON object.
        """
        if params is None:
            return {}
        if not isinstance(params, dict):
            raise serializers.ValidationError(["Parameters must be a JSON object."], code="invalid")
        return params


def register_job_task(task_class: type[JobTask]) -> JobTask:
    """Register a JobTask subclass with Celery and as the runner of its ``kind``; returns the task."""
    from gpux_portal.celery import app

    if not task_class.kind or not task_class.name:
        raise ValueError(f"{task_class.__name__} must set both `kind` and `name`.")
    task = app.register_task(task_class())
    register_job_kind(task)
    return task


@shared_task(name="core.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs_task() -> dict[str, int]:
    """Periodic (celery beat): re-queue or fail running jobs whose worker was lost; send again the messages of
    queued jobs that no worker claimed in time."""
    report = reap_stale_jobs()
    return {"requeued": len(report.requeued), "failed": len(report.failed), "resent": len(report.resent)}
