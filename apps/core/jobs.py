"""The Job table: one row per piece of background work (DESIGN.md, "Background work").

A job row is written first; its Celery task is sent when the transaction commits and claims the row with a
conditional update, so a message delivered twice runs the work once. Feature tables (a registry sync, an
inference job) link to a Job one-to-one for what more they need.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from apps.core.access import VIEW, AccessPolicy, Role
from apps.core.models import OwnedModel
from apps.core.querysets import RestrictedQuerySet


class JobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobQueue(models.TextChoices):
    """The Celery queues of DESIGN.md; a worker subscribes to the ones it serves (a GPU worker: inference.gpu).

    ``checks`` holds the work that runs a model nobody has run yet (validating an upload, measuring a performance
    card): a worker of its own, so interactive predictions on ``inference.*`` never wait behind it."""

    DEFAULT = "default", "default"
    SYNC = "sync", "sync"
    INFERENCE_CPU = "inference.cpu", "inference.cpu"
    INFERENCE_GPU = "inference.gpu", "inference.gpu"
    CHECKS = "checks", "checks"


DEFAULT_TIME_LIMIT = 600
DEFAULT_MAX_ATTEMPTS = 3


def resend_after_seconds() -> int:
    """How long a queued job's message may go unclaimed before the reaper sends it again (the first time)."""
    return int(getattr(settings, "JOBS_RESEND_AFTER_SECONDS", 300))


def first_resend_at():
    """When a new job is due to be sent again if no worker has claimed it by then."""
    return timezone.now() + timedelta(seconds=resend_after_seconds())


# Job kinds whose jobs are about another owned object (a prediction: the deployment or version it ran), and how to
# say "that object is one the caller may view" as a condition on Job rows (``register_job_subject``).
SubjectCondition = Callable[[Any, int], Q]
_subject_conditions: dict[SubjectCondition, set[str]] = {}


def register_job_subject(kinds: Iterable[str], condition: SubjectCondition) -> None:
    """Declare what jobs of ``kinds`` are about: ``condition(user, bound_organization_id)`` is a ``Q`` on Job rows
    true when the user, through a token bound to that organization, may view the job's subject (written with
    ``restrict()`` of the subject's model). A bound token then sees such a job only when it may view its subject
    (an org-bound token never reveals objects of an organization it cannot view), and sees its user's own jobs of
    those kinds, wherever they were counted, when it may (the caller always sees their own)."""
    _subject_conditions.setdefault(condition, set()).update(kinds)


class JobQuerySet(RestrictedQuerySet):
    """``restrict()`` of jobs: DESIGN.md's rule, plus the subjects of jobs under a token's binding (above)."""

    def restrict(self, user: Any, action: str = VIEW, *, within_organization: int | None = None) -> JobQuerySet:
        restricted = super().restrict(user, action, within_organization=within_organization)
        if within_organization is None or not _subject_conditions or not getattr(user, "is_authenticated", False):
            return restricted
        about: Q = Q()
        kinds: set[str] = set()
        for condition, its_kinds in _subject_conditions.items():
            about |= Q(kind__in=sorted(its_kinds)) & condition(user, within_organization)
            kinds |= its_kinds
        if action in self.model.access.creator_actions and getattr(user, "is_active", False):
            restricted = restricted | self.filter(Q(creator=user) & about)
        return restricted.filter(~Q(kind__in=sorted(kinds)) | about)


def job_file_path(job: Job, filename: str) -> str:
    """Where a job's result file lives in the default storage: ``jobs/<uuid>/<filename>``."""
    return f"jobs/{job.uuid}/{filename}"


class Job(OwnedModel):
    """One piece of background work of an organization: its kind and parameters, its state, progress and result.

    The creator and the organization's admins see and cancel a job (``restrict(user, "view")``, ``"cancel"``);
    members see jobs on objects they may view through the feature tables that link to a job. The creator's right
    ends with their membership of the organization (an export of its audit trail is the organization's), unless
    the job is the creator's own (``creator_keeps_access``: a prediction, set from its kind's
    ``JobTask.creator_keeps_access``). ``attempts`` counts claims: a worker
    lost mid-job is noticed by the reaper (a stale ``heartbeat_at``) and the job runs again, up to
    ``max_attempts``. Result writes are conditional on the attempt that claimed the job, so a job that ran
    twice records one result.
    """

    access: ClassVar[AccessPolicy] = AccessPolicy(
        roles={"view": Role.ADMIN, "cancel": Role.ADMIN, "change": Role.ADMIN, "delete": Role.ADMIN},
        grants=False,
        creator_field="creator",
        creator_actions=("view", "cancel"),
        creator_while_member=True,
        creator_kept_field="creator_keeps_access",
    )

    objects = JobQuerySet.as_manager()

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Indexes: each one is written on every job's insert and on each of its status changes (a prediction makes
    # three), so none is kept twice. ``organization`` and ``creator`` are found through Meta.indexes, which lead with
    # them (a lookup by either alone, a cascade included, uses those); ``kind`` has one btree, not a second one for
    # LIKE, which no query uses.
    kind = models.CharField(max_length=100, help_text="What the job does, e.g. “audit.export”.")
    params = models.JSONField(default=dict, blank=True)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="jobs", db_index=False
    )
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs", db_index=False
    )
    creator_keeps_access = models.BooleanField(
        default=False,
        help_text="The job is its creator's own (a prediction): they keep seeing it after leaving the organization.",
    )
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    progress_message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(null=True, blank=True)
    result_file = models.FileField(upload_to=job_file_path, max_length=300, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="How many times a worker has claimed it.")
    max_attempts = models.PositiveSmallIntegerField(default=DEFAULT_MAX_ATTEMPTS)
    queue = models.CharField(max_length=20, choices=JobQueue.choices, default=JobQueue.DEFAULT)
    time_limit = models.PositiveIntegerField(
        default=DEFAULT_TIME_LIMIT, help_text="Seconds one attempt may run before it is stopped and failed."
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the running attempt.")
    resend_at = models.DateTimeField(
        null=True,
        blank=True,
        default=first_resend_at,
        help_text="While queued: when the reaper sends its message again if no worker has claimed it by then.",
    )
    resends = models.PositiveSmallIntegerField(
        default=0, help_text="How many times the reaper sent its message again because no worker had claimed it."
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["kind"], name="core_job_kind_a3fc0395"),  # the name db_index gave it (migration 0005)
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["creator", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["status", "resend_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0, progress__lte=1.0), name="core_job_progress_between_0_and_1"
            ),
            models.CheckConstraint(condition=models.Q(max_attempts__gte=1), name="core_job_max_attempts_positive"),
            models.CheckConstraint(condition=models.Q(time_limit__gte=1), name="core_job_time_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid} ({self.status})"

    def save(self, *args: object, **kwargs: object) -> None:
        if self._state.adding and not self.creator_keeps_access:
            # Whether the job stays its creator's own is a property of its kind (the task that runs it).
            from apps.core.job_services import job_task_for

            self.creator_keeps_access = bool(getattr(job_task_for(self.kind), "creator_keeps_access", False))
        super().save(*args, **kwargs)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        """How long the last attempt ran (so far, while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())


@receiver(post_delete, sender=Job, dispatch_uid="core.job.delete_result_file")
def delete_result_file(sender: type[Job], instance: Job, **kwargs: object) -> None:
    """A deleted job takes its result file with it, once the deletion is committed."""
    if instance.result_file:
        name, storage = instance.result_file.name, instance.result_file.storage
        transaction.on_commit(lambda: storage.delete(name))
