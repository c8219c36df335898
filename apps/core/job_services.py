"""Job workflows: start a job, claim it, report progress, record its outcome, reap jobs whose worker was lost.

The Job row is the single source of truth; Celery messages only say "look at job N". Every transition is a
conditional update on the state the writer saw, so two workers, a redelivered message or the reaper racing
a slow worker can never record two outcomes for one job:

* ``claim_job``: queued -> running (attempts + 1); a message whose job is not queued does nothing.
* ``finish_job`` / ``fail_job``: only while still running *the same attempt*.
* ``reap_stale_jobs``: running with a stale heartbeat -> queued again (re-sent), or failed after max attempts;
  queued and claimed by nobody past ``resend_at`` -> its message sent again (a lost message: Redis restarted,
  or a killed worker's prefetched messages are invisible until the broker's visibility timeout).

Because the claim is conditional, a message sent twice is harmless: the second finds the job taken and is skipped.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from apps.core import jsondata, metrics
from apps.core.jobs import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIME_LIMIT,
    Job,
    JobQueue,
    JobStatus,
    resend_after_seconds,
)

if TYPE_CHECKING:
    from celery import Task

logger = logging.getLogger(__name__)

# Celery's hard limit kills an attempt this long after its soft limit (the job's time_limit) was reached
# (``JOBS_HARD_LIMIT_MARGIN_SECONDS``; it must stay below the reaper's grace, see ``reap_stale_jobs``).
HARD_LIMIT_MARGIN = 30


# Sent inside the transaction that starts or cancels a job, with ``action`` ("job.created", "job.cancelled"),
# ``organization`` (an Organization or its id), ``actor``, ``job`` and ``metadata``: the audit app records it in the
# organization's chain (apps/audit/apps.py), so that it commits or rolls back with the job.
job_event = Signal()


class JobClaimLost(Exception):
    """The running attempt no longer owns its job (reaped, cancelled or claimed again): stop working."""


class QueueUnavailable(Exception):
    """The job queue (the broker, Redis) does not answer. ``job``: the job already written, if any; it stays
    queued and the reaper sends it once the broker is back. The API answers 503 with ``Retry-After``."""

    def __init__(self, message: str, *, job: Job | None = None) -> None:
        super().__init__(message)
        self.job = job


def broker_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the broker or Redis does not answer" (not a bug of ours)."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (OperationalError, RedisConnectionError, RedisTimeoutError, QueueUnavailable)


def retry_after_seconds() -> int:
    """What a 503 for an unreachable queue tells clients to wait before trying again."""
    return int(getattr(settings, "JOBS_RETRY_AFTER_SECONDS", 30))


# --- the registry of job kinds --------------------------------------------------------------------------------

_job_tasks: dict[str, Task] = {}
_discovered = False


def register_job_kind(task: Task) -> None:
    """Make ``task`` (a registered JobTask) the one that runs jobs of ``task.kind``."""
    existing = _job_tasks.get(task.kind)
    if existing is not None and existing.name != task.name:
        raise ValueError(f"Job kind {task.kind!r} is already run by {existing.name!r}, not {task.name!r}.")
    _job_tasks[task.kind] = task


def _discover_job_kinds() -> None:
    # Importing every app's tasks module (and CELERY_IMPORTS) registers their job kinds: the worker does it
    # at start-up, the web process here on first use.
    global _discovered
    if not _discovered:
        autodiscover_modules("tasks")
        for module in getattr(settings, "CELERY_IMPORTS", ()):
            importlib.import_module(module)
        _discovered = True


def job_task_for(kind: str) -> Task | None:
    """The task that runs jobs of ``kind``, or None when no such kind is registered."""
    if kind not in _job_tasks:
        _discover_job_kinds()
    return _job_tasks.get(kind)


def job_kinds() -> dict[str, Task]:
    """Every registered job kind and its task."""
    _discover_job_kinds()
    return dict(_job_tasks)


def kind_label(kind: str) -> str:
    """What pages call a job of ``kind``: its task's ``label`` ("Validation", "Prediction"), else the kind's last
    part made readable (``audit.export`` -> "Export"), so that no page shows a kind as code."""
    task = job_task_for(kind) if kind else None
    label = str(getattr(task, "label", "") or "")
    if label:
        return label
    tail = str(kind or "").rsplit(".", 1)[-1].replace("_", " ").strip()
    return tail[:1].upper() + tail[1:] if tail else "Job"


def kind_choices() -> list[tuple[str, str]]:
    """The kinds a jobs page offers in its select, one per label (kinds that share a label, the two prediction
    kinds, are one choice: ``kinds_like`` gives them all), sorted by label."""
    by_label: dict[str, str] = {}
    for kind in sorted(job_kinds()):
        by_label.setdefault(kind_label(kind), kind)
    return sorted(((kind, label) for label, kind in by_label.items()), key=lambda choice: choice[1].lower())


def kinds_like(kind: str) -> list[str]:
    """``kind`` and every registered kind that pages call by the same label."""
    label = kind_label(kind)
    return sorted({kind, *(other for other in job_kinds() if kind_label(other) == label)})


# Features say what their jobs are about for the jobs pages: ``describer(rows, user)`` fills, in each row of
# ``describe_jobs`` it knows, ``subject`` (what the job ran on, readable), ``subject_url`` and ``url`` (the job's own
# page when a feature has a better one than /jobs/<uuid>/), naming only what ``user`` may view.
JobDescriber = Callable[[list[dict[str, Any]], Any], None]
_job_describers: list[JobDescriber] = []


def register_job_describer(describer: JobDescriber) -> None:
    """Add a feature's describer of job rows (see ``describe_jobs``); registering one twice keeps one."""
    if describer not in _job_describers:
        _job_describers.append(describer)


def describe_jobs(jobs: list[Job], user: Any) -> list[dict[str, Any]]:
    """One row per job for the jobs pages: the job, its kind's label, what it is about and where its page is."""
    from django.urls import reverse

    rows = [
        {
            "job": job,
            "label": kind_label(job.kind),
            "subject": "",
            "subject_url": "",
            "url": reverse("job-detail", kwargs={"uuid": job.uuid}),
        }
        for job in jobs
    ]
    for describer in _job_describers:
        describer(rows, user)
    return rows


# --- starting and sending --------------------------------------------------------------------------------------


def start_job(
    *,
    kind: str,
    organization: Any,
    creator: Any = None,
    params: dict | None = None,
    queue: str | None = None,
    max_attempts: int | None = None,
    time_limit: int | None = None,
    beside: Any = None,
    created_at: Any = None,
) -> Job:
    """Write a queued Job row and send its task once the surrounding transaction commits.

    ``beside``: an unsaved row of a model whose primary key is a one-to-one ``job`` (a prediction's InferenceJob),
    written with the job, both or neither. On PostgreSQL, for a kind whose creation is not audited, outside any
    transaction of the caller's, both go in one statement (``_insert_beside``): one round trip where a transaction
    of two inserts takes four, on the path of every asynchronous prediction.

    Defaults for ``queue``, ``max_attempts`` and ``time_limit`` come from the kind's task. ``params`` must be
    JSON; the kind's own ``clean_params`` validation is the caller's business (the API runs it). ``organization``
    is an Organization or its id. Records a ``job.created`` audit event in the organization's chain, unless the
    kind's task says its jobs are not audit events (``audit_creation = False``: predictions and pipeline runs,
    whose Job rows are their record). Called inside a transaction, the job is sent when the outermost one commits,
    so rows the caller writes beside it (an ``InferenceJob``) are there when the worker claims it.
    """
    task = job_task_for(kind)
    if task is None:
        raise ValidationError({"kind": [f"There is no job kind “{kind}”."]}, code="invalid_choice")
    queue = queue or getattr(task, "job_queue", JobQueue.DEFAULT)
    if queue not in JobQueue.values:
        raise ValidationError(
            {"queue": [f"“{queue}” is not a queue; use one of {', '.join(JobQueue.values)}."]}, code="invalid_choice"
        )
    try:
        params = json.loads(json.dumps(params or {}, cls=DjangoJSONEncoder))
    except (TypeError, ValueError) as exc:
        raise ValidationError({"params": [f"Parameters must be JSON: {exc}"]}, code="invalid") from exc
    owner = {"organization": organization} if hasattr(organization, "pk") else {"organization_id": organization}
    job = Job(
        kind=kind,
        params=params,
        **owner,
        creator=creator if getattr(creator, "is_authenticated", False) else None,
        queue=queue,
        max_attempts=max_attempts or getattr(task, "max_attempts", DEFAULT_MAX_ATTEMPTS),
        time_limit=time_limit or getattr(task, "job_time_limit", DEFAULT_TIME_LIMIT),
        **({"created_at": created_at} if created_at is not None else {}),
    )
    if (
        beside is not None
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and not getattr(task, "audit_creation", True)
    ):
        _insert_beside(job, beside)
        send_job(job)
        return job
    # No savepoint when the caller's transaction holds this one: two round trips saved per job, and an error here
    # fails the caller's transaction as it should.
    with transaction.atomic(savepoint=False):
        job.save(force_insert=True)
        if beside is not None:
            beside.job = job
            beside.save(force_insert=True)
        if getattr(task, "audit_creation", True):
            job_event.send(
                sender=Job,
                action="job.created",
                organization=organization,
                actor=creator,
                job=job,
                metadata={"kind": kind, "params": params, "queue": queue},
            )
        transaction.on_commit(lambda: send_job(job))
    return job


def _insert_beside(job: Job, beside: Any) -> None:
    """Insert ``job`` and ``beside`` (its one-to-one row) in one statement: ``WITH j AS (INSERT the job RETURNING
    id) INSERT the other row with that id``. One statement is one transaction, so both are written or neither. The
    values are each field's as the ORM would write them (``pre_save``, ``get_db_prep_save``); neither model has
    save() logic beyond Job's own (``creator_keeps_access``, set here as Job.save sets it) nor a signal receiver that
    reads them (core's short-lived caches watch neither)."""
    if not job.creator_keeps_access:
        job.creator_keeps_access = bool(getattr(job_task_for(job.kind), "creator_keeps_access", False))
    sql, job_fields, other_fields = _insert_beside_statement(type(beside))
    # This thread's connection itself: each field's preparation asks it for its operations and features, and through
    # the ``connection`` proxy every one of those ~30 lookups went through asgiref's context-local storage.
    wrapper = connections[DEFAULT_DB_ALIAS]
    params = [f.get_db_prep_save(f.pre_save(job, True), wrapper) for f in job_fields]
    params += [f.get_db_prep_save(f.pre_save(beside, True), wrapper) for f in other_fields]
    with wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        (job.pk,) = cursor.fetchone()
    job._state.adding, job._state.db = False, wrapper.alias
    beside.job = job
    beside._state.adding, beside._state.db = False, wrapper.alias


@functools.cache
def _insert_beside_statement(model: type) -> tuple[str, list[Any], list[Any]]:
    """``_insert_beside``'s statement for a ``model`` beside Job, and the fields whose values it takes, in order
    (the same for every job: built once per process, not quoted again on every prediction)."""
    quote = connection.ops.quote_name
    link = model._meta.pk
    job_fields = [f for f in Job._meta.concrete_fields if f is not Job._meta.pk]
    other_fields = [f for f in model._meta.concrete_fields if f is not link]
    qn_job, qn_other = quote(Job._meta.db_table), quote(model._meta.db_table)
    job_columns = ", ".join(quote(f.column) for f in job_fields)
    other_columns = ", ".join(quote(f.column) for f in other_fields)
    job_values, other_values = ", ".join(["%s"] * len(job_fields)), ", ".join(["%s"] * len(other_fields))
    pk, linked = quote(Job._meta.pk.column), quote(link.column)
    sql = (
        f"WITH j AS (INSERT INTO {qn_job} ({job_columns}) VALUES ({job_values}) RETURNING {pk}) "  # noqa: S608 - names from models
        f"INSERT INTO {qn_other} ({linked}, {other_columns}) VALUES ((SELECT {pk} FROM j), {other_values}) "
        f"RETURNING {linked}"
    )
    return sql, job_fields, other_fields


def hard_limit_margin() -> int:
    """Seconds between an attempt's soft time limit (the job's ``time_limit``) and its hard limit."""
    return int(getattr(settings, "JOBS_HARD_LIMIT_MARGIN_SECONDS", HARD_LIMIT_MARGIN))


def send_job(job: Job) -> bool:
    """Send the job's task message now (call it after commit); False when it could not be sent.

    A broker that does not answer leaves the job queued, saying so in its ``progress_message``, and due for the
    reaper's next pass (``resend_at`` now), which sends it once the broker is back; ``job.unsent`` then holds the
    reason, for callers that must tell their client (``ensure_sent``). A kind with no worker code fails the job.

    The job's ``time_limit`` becomes the attempt's soft limit (the job fails with a clear error) and
    ``time_limit + hard_limit_margin()`` its hard limit (the worker kills the process and the job is failed,
    saying that it ran past its time limit: ``fail_past_hard_limit``).
    """
    task = job_task_for(job.kind)
    if task is None:
        _fail_unsent(job, f"No worker code is registered for job kind “{job.kind}”.")
        return False
    deliver = getattr(task, "deliver", None)
    if deliver is not None:
        # A kind may deliver its message another way when it can (inference: straight to a serving loop); the
        # job's row and the reaper stay what make it durable, so a message lost there is sent again as any other.
        try:
            if deliver(job):
                job.unsent = ""
                return True
        except Exception:  # that way is down: the broker's way below
            logger.warning("Could not deliver job %s its own way; sending it through the broker", job.uuid)
    try:
        kwargs = task.message_kwargs(job) if hasattr(task, "message_kwargs") else None
        task.apply_async(
            args=[job.pk],
            kwargs=kwargs or {},
            queue=job.queue,
            soft_time_limit=job.time_limit,
            time_limit=job.time_limit + hard_limit_margin(),
        )
    except Exception as exc:
        logger.exception("Could not send job %s to the broker", job.uuid)
        _wait_for_broker(job, f"{type(exc).__name__}: {exc}")
        return False
    job.unsent = ""
    return True


def _wait_for_broker(job: Job, reason: str) -> None:
    message = f"Waiting for the job queue: the broker did not answer ({reason}); it is sent again when it is back."
    job.unsent = message
    Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        resend_at=timezone.now(), progress_message=message[:300]
    )


def ensure_sent(job: Job) -> None:
    """Raise ``QueueUnavailable`` when ``job``'s message could not be sent (``send_job`` after commit)."""
    if getattr(job, "unsent", ""):
        raise QueueUnavailable(job.unsent, job=job)


def _fail_unsent(job: Job, error: str) -> None:
    if Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.FAILED, error=error, finished_at=timezone.now()
    ):
        transaction.on_commit(lambda: after_job_outcome(job, JobStatus.FAILED))


def cancel_job(*, job: Job, actor: Any = None) -> bool:
    """Cancel a queued or running job; False when it had already finished.

    A queued job's message then finds nothing to claim; a running attempt stops at its next progress report
    (``JobClaimLost``) and records nothing. Records ``job.cancelled`` in the organization's chain.
    """
    with transaction.atomic():
        cancelled = Job.objects.filter(pk=job.pk, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now()
        )
        if cancelled:
            transaction.on_commit(lambda: after_job_outcome(job, JobStatus.CANCELLED))
            job_event.send(
                sender=Job,
                action="job.cancelled",
                organization=job.organization_id,
                actor=actor,
                job=job,
                metadata={"kind": job.kind, "status_before": job.status},
            )
    job.refresh_from_db()
    return bool(cancelled)


# --- running: claim, progress, outcome --------------------------------------------------------------------------


# What a claim writes: the attempt starts afresh (its progress, error and traceback cleared).
CLAIM_SET = (
    "status = %s, started_at = %s, heartbeat_at = %s, finished_at = NULL, attempts = job.attempts + 1, "
    "progress = 0.0, progress_message = '', error = '', traceback = ''"
)


def _claim_values(now: Any) -> dict[str, Any]:
    """``CLAIM_SET`` for the ORM's ``update()`` (the databases without ``UPDATE ... RETURNING``)."""
    return {
        "status": JobStatus.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "finished_at": None,
        "attempts": F("attempts") + 1,
        "progress": 0.0,
        "progress_message": "",
        "error": "",
        "traceback": "",
    }


def _claim_returning(where: str, params: list[Any], now: Any) -> list[Job]:
    """PostgreSQL: claim the queued jobs ``where`` selects and read them back in the same statement."""
    table = connection.ops.quote_name(Job._meta.db_table)
    return list(
        Job.objects.raw(
            f"UPDATE {table} AS job SET {CLAIM_SET} WHERE {where} AND job.status = %s RETURNING job.*",  # noqa: S608 - table from the model, values bound
            [JobStatus.RUNNING, now, now, *params, JobStatus.QUEUED],
        )
    )


def claim_job(job_id: int) -> Job | None:
    """Move a queued job to running for this attempt and return it; None when it is not queued (any more).

    One conditional UPDATE: of two workers handed the same job, exactly one gets a row back. On PostgreSQL the
    UPDATE returns the claimed row (one round trip; the job's organization and creator load when first used).
    """
    now = timezone.now()
    if connection.vendor == "postgresql":
        claimed = _claim_returning("job.id = %s", [job_id], now)
        if claimed:
            metrics.job_claimed(claimed[0])
        return claimed[0] if claimed else None
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(**_claim_values(now))
    if not claimed:
        return None
    job = Job.objects.select_related("organization", "creator").get(pk=job_id)
    metrics.job_claimed(job)
    return job


def _still_ours(job: Job):
    return Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts)


@dataclass
class ProgressReporter:
    """``progress(fraction, message)`` for a running attempt: stores progress and beats the heartbeat.

    Writes at most once per ``interval`` seconds (a final 1.0 always goes through). Raises ``JobClaimLost``
    when the attempt no longer owns the job, so work on a reaped or cancelled job stops at the next report.
    """

    job: Job
    interval: float = 1.0
    _last_write: float = field(default=float("-inf"), init=False)

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        self.job.progress, self.job.progress_message = fraction, str(message)[:300]
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_write < self.interval:
            return
        self._last_write = now
        self.job.heartbeat_at = timezone.now()
        updated = _still_ours(self.job).update(
            progress=self.job.progress, progress_message=self.job.progress_message, heartbeat_at=self.job.heartbeat_at
        )
        if not updated:
            raise JobClaimLost(f"Job {self.job.uuid} is no longer running attempt {self.job.attempts}.")

    def heartbeat(self) -> None:
        """A sign of life for work that cannot say how far it is."""
        self(self.job.progress, self.job.progress_message)


def _as_json(result: Any) -> Any:
    return jsondata.normalized(result)


# Called once per job outcome, after its commit, with (job, status, finished_at): the metrics, and whatever an app
# registers (``register_outcome_listener``: usage analytics records each finished job).
_outcome_listeners: list[Any] = []


def register_outcome_listener(listener: Any) -> None:
    """Call ``listener(job, status, finished_at)`` after each job outcome is committed (on the process recording
    it). A listener must be cheap and must not raise into the job's path (its errors are logged)."""
    if listener not in _outcome_listeners:
        _outcome_listeners.append(listener)


def after_job_outcome(job: Job, status: str, finished_at: Any = None) -> None:
    """The metrics of a job's outcome, then the registered listeners."""
    if finished_at is None:
        metrics.job_outcome(job, status)
    else:
        metrics.job_outcome(job, status, finished_at=finished_at)
    for listener in _outcome_listeners:
        try:
            listener(job, status, finished_at)
        except Exception:
            logger.exception("A job outcome listener failed for job %s", job.pk)


def finish_job(job: Job, result: Any = None) -> str | None:
    """Record success for the attempt that claimed ``job``: the status recorded, or None if it lost the job.

    A result that is not JSON records a failure instead. A result file the attempt saved
    (``job.result_file``) is kept only when the outcome is recorded.
    """
    try:
        result = _as_json(result)
    except (TypeError, ValueError) as exc:
        return JobStatus.FAILED if fail_job(job, error=f"The job's result is not JSON: {exc}") else None
    now = timezone.now()
    recorded = _still_ours(job).update(
        status=JobStatus.SUCCEEDED,
        result=result,
        result_file=job.result_file.name or "",
        progress=1.0,
        heartbeat_at=now,
        finished_at=now,
    )
    if not recorded:
        _discard_orphan_file(job)
        return None
    transaction.on_commit(lambda: after_job_outcome(job, JobStatus.SUCCEEDED, finished_at=now))
    return JobStatus.SUCCEEDED


def finish_jobs(outcomes: list[tuple[Job, Any]]) -> set[int]:
    """``finish_job`` for many claimed jobs at once (a merged inference batch): the ids recorded.

    On PostgreSQL one UPDATE over a VALUES list, each row still conditional on its own claim (running, same
    attempt); elsewhere one ``finish_job`` per job. Results must be JSON; no result files.
    """
    if not outcomes:
        return set()
    if connection.vendor != "postgresql":
        return {job.pk for job, result in outcomes if finish_job(job, result)}
    now = timezone.now()
    # Encoded once, as ``_as_json`` would check it (a result that is not JSON raises here, before anything is written).
    rows = [(job.pk, job.attempts, jsondata.dumps_text(result)) for job, result in outcomes]
    values = ", ".join(["(%s, %s, %s::jsonb)"] * len(rows))
    params = [value for row in rows for value in row]
    table = Job._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS job SET status = %s, result = v.result, progress = 1.0, heartbeat_at = %s, "  # noqa: S608 - table name from the model
            f"finished_at = %s FROM (VALUES {values}) AS v(id, attempts, result) "
            "WHERE job.id = v.id AND job.status = %s AND job.attempts = v.attempts RETURNING job.id",
            [JobStatus.SUCCEEDED, now, now, *params, JobStatus.RUNNING],
        )
        recorded = {row[0] for row in cursor.fetchall()}
    for job, _result in outcomes:
        if job.pk in recorded:
            job.status, job.finished_at = JobStatus.SUCCEEDED, now
            transaction.on_commit(lambda job=job: after_job_outcome(job, JobStatus.SUCCEEDED, finished_at=now))
    return recorded


def claim_jobs(job_ids: list[int]) -> list[Job]:
    """``claim_job`` for many queued jobs at once: the jobs this call claimed (others are skipped). One statement
    on PostgreSQL (the UPDATE returns what it claimed), two elsewhere."""
    if not job_ids:
        return []
    now = timezone.now()
    if connection.vendor == "postgresql":
        claimed = _claim_returning("job.id = ANY(%s)", [list(job_ids)], now)
        for job in claimed:
            metrics.job_claimed(job)
        return claimed
    Job.objects.filter(pk__in=job_ids, status=JobStatus.QUEUED).update(**_claim_values(now))
    # The exact claim time marks this call's claims: a job claimed by anyone else has another started_at.
    claimed = list(
        Job.objects.select_related("organization", "creator").filter(
            pk__in=job_ids, status=JobStatus.RUNNING, started_at=now
        )
    )
    for job in claimed:
        metrics.job_claimed(job)
    return claimed


def fail_job(job: Job, *, error: str, traceback: str = "") -> bool:
    """Record failure (message and traceback) for the attempt that claimed ``job``; False if it lost the job."""
    now = timezone.now()
    recorded = _still_ours(job).update(
        status=JobStatus.FAILED,
        error=error[:10_000],
        traceback=traceback,
        result_file="",
        heartbeat_at=now,
        finished_at=now,
    )
    _discard_orphan_file(job)
    if recorded:
        transaction.on_commit(lambda: after_job_outcome(job, JobStatus.FAILED, finished_at=now))
    return bool(recorded)


def fail_past_hard_limit(job_id: int, hard_limit: float) -> Job | None:
    """Fail the running job whose worker process was killed at its hard time limit; the job, or None.

    Called by the worker's main process (``JobRequest.on_timeout``) once the pool process is gone, so the job
    ends saying why instead of waiting for the reaper and being run again into the same limit. Conditional on an
    attempt that has run for at least its time limit: a newer attempt (after a reap) is never touched.
    """
    now = timezone.now()
    job = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).first()
    if job is None:
        return None
    error = (
        f"Ran past its time limit of {job.time_limit} s and did not stop: the worker killed it at the hard "
        f"limit ({hard_limit:g} s)."
    )
    recorded = Job.objects.filter(
        pk=job.pk,
        status=JobStatus.RUNNING,
        attempts=job.attempts,
        started_at__lte=now - timedelta(seconds=job.time_limit),
    ).update(status=JobStatus.FAILED, error=error, heartbeat_at=now, finished_at=now)
    if not recorded:
        return None
    job.status, job.error, job.finished_at = JobStatus.FAILED, error, now
    transaction.on_commit(lambda: after_job_outcome(job, JobStatus.FAILED, finished_at=now))
    logger.warning("Job %s (%s) was killed at its hard time limit of %g s", job.uuid, job.kind, hard_limit)
    return job


def _discard_orphan_file(job: Job) -> None:
    # A file written by an attempt whose outcome was not recorded would never be served: remove it.
    name = job.result_file.name
    if name and not Job.objects.filter(pk=job.pk, result_file=name).exists():
        default_storage.delete(name)


# --- the reaper --------------------------------------------------------------------------------------------------


@dataclass
class ReapReport:
    """What one reaper pass did."""

    requeued: list[Job] = field(default_factory=list)
    failed: list[Job] = field(default_factory=list)
    resent: list[Job] = field(default_factory=list)


def reaper_grace() -> int:
    return int(getattr(settings, "JOBS_REAPER_GRACE_SECONDS", 60))


def broker_visibility_timeout() -> int:
    """Seconds the broker keeps a delivered, unacknowledged message invisible before giving it to another worker."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    return int(options.get("visibility_timeout", 3600))


def resend_interval(resends: int) -> timedelta:
    """How long a queued job waits for a worker after its ``resends``-th re-send before the next one:
    ``JOBS_RESEND_AFTER_SECONDS``, doubling with each re-send, at most the broker's visibility timeout. A job that
    only waits behind busy workers thus costs a few duplicate messages (each skipped at once), not one a pass."""
    base = resend_after_seconds()
    return timedelta(seconds=min(base * 2 ** min(resends, 16), max(base, broker_visibility_timeout())))


RESEND_BATCH = 500


def resend_unclaimed_jobs(*, now: Any = None, limit: int = RESEND_BATCH) -> list[Job]:
    """Send again the messages of queued jobs that no worker claimed by their ``resend_at``.

    A queued job's message can be gone without a trace: Redis restarted without the messages waiting in it, a
    send failed, or a worker's main process was killed with messages it had prefetched (the broker keeps those
    invisible for its visibility timeout). Each re-send is conditional on the job still queued with the re-send
    count seen, and the claim is conditional too, so a message that was not lost after all only adds a duplicate
    that the worker skips.
    """
    now = now or timezone.now()
    due = (
        Job.objects.filter(status=JobStatus.QUEUED)
        .filter(Q(resend_at__lte=now) | Q(resend_at__isnull=True))
        .order_by(F("resend_at").asc(nulls_first=True), "id")[:limit]
    )
    resent: list[Job] = []
    for job in due:
        interval = resend_interval(job.resends + 1)
        with transaction.atomic():
            changed = Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED, resends=job.resends).update(
                resends=F("resends") + 1,
                resend_at=now + interval,
                progress_message=(
                    f"Sent to the queue again (re-send {job.resends + 1}): no worker had taken it; next re-send "
                    f"in {int(interval.total_seconds())} s if still waiting."
                ),
            )
            if changed:
                job.refresh_from_db()
                transaction.on_commit(lambda job=job: send_job(job))
                resent.append(job)
    if resent:
        logger.warning("Re-sent %d queued job(s) that no worker had claimed", len(resent))
    return resent


def reap_stale_jobs(*, now: Any = None) -> ReapReport:
    """Re-queue (or, past ``max_attempts``, fail) running jobs whose worker is gone; send again the messages of
    queued jobs nobody claimed in time (``resend_unclaimed_jobs``).

    A running job is taken for lost when its heartbeat is older than its time limit plus the grace
    (``JOBS_REAPER_GRACE_SECONDS``): an attempt alive that long would have hit its hard time limit
    (time limit + ``hard_limit_margin()``, less than the grace), so a live worker is never robbed of its job.
    Each transition is conditional on the heartbeat and attempt seen, so a late report from the old attempt and
    the reaper cannot both win; the old attempt's result writes then find the job no longer theirs.
    """
    now = now or timezone.now()
    grace = reaper_grace()
    report = ReapReport()
    candidates = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=now - timedelta(seconds=grace))
    for job in candidates.order_by("heartbeat_at"):
        if job.heartbeat_at + timedelta(seconds=job.time_limit + grace) > now:
            continue
        seen = Job.objects.filter(
            pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts, heartbeat_at=job.heartbeat_at
        )
        silent_for = int((now - job.heartbeat_at).total_seconds())
        with transaction.atomic():
            if job.attempts < job.max_attempts:
                changed = seen.update(
                    status=JobStatus.QUEUED,
                    heartbeat_at=None,
                    resend_at=now + resend_interval(job.resends),
                    progress_message=(
                        f"Re-queued: the worker running attempt {job.attempts} of {job.max_attempts} "
                        f"was lost (no heartbeat for {silent_for} s)."
                    ),
                )
                if changed:
                    job.refresh_from_db()
                    transaction.on_commit(lambda job=job: send_job(job))
                    report.requeued.append(job)
            else:
                changed = seen.update(
                    status=JobStatus.FAILED,
                    finished_at=now,
                    error=(
                        f"Worker lost {job.attempts} times (no heartbeat for {silent_for} s, time limit "
                        f"{job.time_limit} s + {grace} s grace); giving up after {job.max_attempts} attempts."
                    ),
                )
                if changed:
                    job.refresh_from_db()
                    report.failed.append(job)
        if changed:
            logger.warning("Reaped job %s (%s): now %s", job.uuid, job.kind, job.status)
            if job.status == JobStatus.FAILED:
                after_job_outcome(job, JobStatus.FAILED)
            else:
                metrics.job_requeued(job)
    report.resent = resend_unclaimed_jobs(now=now)
    return report
