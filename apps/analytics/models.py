"""Usage analytics: raw usage events (one row per counted use), their hourly and daily rollups, and the buckets
waiting to be rolled up again.

Events reach the table in bulk: ``apps.analytics.usage.record`` appends each one to a Redis stream off the request's
hot path and ``apps.analytics.drain`` copies the stream into this table (idempotent by ``event_id``). Rollups are
recomputed from the raw events of a bucket (``apps.analytics.rollups``), so a recount always equals them.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.access import AccessPolicy, Role
from apps.core.models import OwnedModel


class UsageKind(models.TextChoices):
    """What was used. Runs are ``prediction`` (online serving) plus ``job`` (durable jobs, async predictions)."""

    DOWNLOAD = "download", "download"
    PREDICTION = "prediction", "online prediction"
    JOB = "job", "durable job"
    BATCH_ROWS = "batch_rows", "batch rows"
    REGISTRY_PULL = "registry_pull", "pull through a registry"
    SYNC = "sync", "registry sync"


RUN_KINDS = (UsageKind.PREDICTION, UsageKind.JOB)


class TokenKind(models.TextChoices):
    """Who holds an API token, so that CI and service traffic can be told apart from people's."""

    NONE = "", "no token (session or anonymous)"
    PERSONAL = "personal", "personal"
    CI = "ci", "CI"
    SERVICE = "service", "service"


class Outcome(models.TextChoices):
    OK = "ok", "ok"
    ERROR = "error", "error"
    REFUSED = "refused", "refused"


# One access policy for everything usage: the organization's admins (and owners) see it.
USAGE_ACCESS = AccessPolicy(roles={"view": Role.ADMIN, "change": Role.OWNER, "delete": Role.OWNER}, grants=False)


class UsageEvent(OwnedModel):
    """One counted use: of what (``kind``; ``model_id``/``version_id``/``deployment_id``, and ``subject_type``/
    ``subject_id``/``subject_label`` as text), by whom (``actor``, null for anonymous callers; ``token_id`` and its
    ``token_kind``), how much (``items``, ``bytes``, ``compute_seconds`` on ``device``), how fast (``latency_ms``)
    and how it ended (``outcome``, ``status_code``).

    ``organization`` is the organization the use counts against (a model's owner for a download, a deployment's for
    a prediction on it, the caller's acting organization for a direct run); its admins see it. Model, version,
    deployment and token are kept as plain ids, not foreign keys, so that usage survives the purge of what was used
    and a bulk insert checks no constraint per row. ``event_id`` is given by the recorder: the drain inserts an
    event at most once however often it reads it.
    """

    access: ClassVar[AccessPolicy] = USAGE_ACCESS

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No single-column indexes of their own on the two foreign keys: the composite indexes below start with them,
    # and every index is written once per drained event.
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="usage_events", db_index=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_events",
        db_index=False,
    )
    kind = models.CharField(max_length=40, choices=UsageKind.choices)
    token_id = models.BigIntegerField(null=True, blank=True, help_text="The API token used, if any.")
    token_kind = models.CharField(max_length=10, choices=TokenKind.choices, blank=True, default="")
    model_id = models.BigIntegerField(null=True, blank=True)
    version_id = models.BigIntegerField(null=True, blank=True)
    deployment_id = models.BigIntegerField(null=True, blank=True)
    subject_type = models.CharField(max_length=100, blank=True, help_text="e.g. “marketplace.modelversion”.")
    subject_id = models.CharField(max_length=64, blank=True, help_text="The subject's UUID.")
    subject_label = models.CharField(max_length=300, blank=True, help_text="e.g. “acme/iris@1.0.0”.")
    path = models.CharField(max_length=500, blank=True)
    blob_sha256 = models.CharField(max_length=64, blank=True)
    items = models.IntegerField(default=1, help_text="Items processed: inputs of a batch, rows, models synced.")
    bytes = models.BigIntegerField(default=0, help_text="Bytes sent (0 for HEAD, 304 or an offloaded download).")
    latency_ms = models.FloatField(null=True, blank=True)
    compute_seconds = models.FloatField(default=0.0, help_text="Seconds of a worker's device spent on it.")
    device = models.CharField(max_length=20, blank=True, help_text="“gpu” or “cpu” for compute.")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OK)
    status_code = models.PositiveSmallIntegerField(default=200)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "kind", "-created_at"]),
            models.Index(fields=["actor", "kind", "subject_type", "subject_id"]),
            # A deployment's live status and the deployments list (apps.analytics.live): its online predictions.
            models.Index(
                fields=["deployment_id", "kind", "-created_at"],
                condition=models.Q(deployment_id__isnull=False),
                name="analytics_usage_deployment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_label or self.subject_id} by {self.actor_id or 'anonymous'}"


class Granularity(models.TextChoices):
    HOUR = "hour", "hour"
    DAY = "day", "day"


class RollupScope(models.TextChoices):
    """What a rollup row is grouped by besides the bucket, organization, kind and token kind."""

    ORGANIZATION = "org", "organization"
    MODEL = "model", "model and version"
    TOKEN = "token", "token"


class UsageRollup(models.Model):
    """The usage of one bucket (an hour or a day, UTC) of one organization, by kind and token kind, at one scope:
    the whole organization, a model's version, or a token. ``users`` counts distinct signed-in users of the row
    (not additive across buckets); latency is kept as sum, count, max and the bucket's p95 (PostgreSQL).

    Rows of a bucket are replaced as a whole by ``apps.analytics.rollups.roll_up`` from the raw events, so they
    always equal a recount. ``model_id``/``version_id``/``token_id`` are 0 where the scope does not use them.
    """

    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    # Indexed by the composite index below, which starts with it (rollups write hundreds of thousands of rows a day:
    # no index that another one already gives).
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    scope = models.CharField(max_length=5, choices=RollupScope.choices)
    kind = models.CharField(max_length=40, choices=UsageKind.choices)
    token_kind = models.CharField(max_length=10, choices=TokenKind.choices, blank=True, default="")
    model_id = models.BigIntegerField(default=0)
    version_id = models.BigIntegerField(default=0)
    token_id = models.BigIntegerField(default=0)
    events = models.BigIntegerField(default=0)
    items = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    users = models.IntegerField(default=0)
    compute_seconds = models.FloatField(default=0.0)
    latency_sum_ms = models.FloatField(default=0.0)
    latency_count = models.BigIntegerField(default=0)
    latency_max_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["granularity", "bucket_start"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "granularity", "bucket_start", "organization", "scope", "kind", "token_kind",
                    "model_id", "version_id", "token_id",
                ],
                name="analytics_rollup_unique_row",
            ),
        ]  # fmt: skip
        indexes = [
            # A bucket's rows (the rollup's delete, retention) are found by the unique constraint's index, which
            # starts with granularity and bucket_start.
            models.Index(fields=["organization", "granularity", "scope", "bucket_start"]),
            models.Index(fields=["model_id", "granularity", "scope", "bucket_start"]),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:00} {self.organization_id} {self.scope} {self.kind}"


class UsageActiveUser(models.Model):
    """A signed-in user who used something in one bucket (an hour or a day, UTC), written with the bucket's rollup rows
    from its raw events (``apps.analytics.rollups``) and replaced with them. Two scopes, as the pages read them: the
    organization's (``model_id`` 0: one row per distinct kind, token kind and user) and a model's (one row per distinct
    model, kind and user, all token kinds together). Distinct users over any set of buckets (a whole period, with the
    pages' filters) are a ``COUNT(DISTINCT user_id)`` over these rows, which ``UsageRollup.users`` (distinct within one
    row) cannot give. A token has one user: its rollup rows say whether it was used. Kept as long as the rollups of
    their granularity."""

    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )  # indexed by (organization, granularity, bucket_start) below
    kind = models.CharField(max_length=40, choices=UsageKind.choices)
    token_kind = models.CharField(max_length=10, choices=TokenKind.choices, blank=True, default="")
    model_id = models.BigIntegerField(default=0)
    user_id = models.BigIntegerField()

    class Meta:
        ordering = ["granularity", "bucket_start"]
        indexes = [
            models.Index(fields=["organization", "granularity", "bucket_start"]),
            models.Index(fields=["granularity", "bucket_start"]),
            models.Index(
                fields=["model_id", "granularity", "bucket_start"],
                name="analytics_active_user_model",
                condition=models.Q(model_id__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:00} {self.organization_id} user {self.user_id}"


class PendingRollup(models.Model):
    """A bucket whose raw events changed since it was last rolled up (written by whatever inserts events, in the
    same transaction). The periodic rollup takes these, so it catches up after any downtime and late events are
    counted in their own bucket. A day waits until it is over or ``USAGE_DAY_ROLLUP_REFRESH_SECONDS`` passed."""

    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    first_marked_at = models.DateTimeField(default=timezone.now)
    last_marked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["granularity", "bucket_start"]
        constraints = [
            models.UniqueConstraint(fields=["granularity", "bucket_start"], name="analytics_pending_unique_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:00}"


class Plan(models.Model):
    """A set of default limits. Every organization is on one (``OrganizationQuota.plan``, else the plan marked
    ``is_default``); an operator overrides single limits per organization. Empty: unlimited."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False, help_text="The plan of organizations that name none.")
    api_requests_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="Per organization.")
    predictions_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="Per organization.")
    token_api_requests_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="Per API token.")
    token_predictions_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="Per API token.")
    gpu_seconds_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    cpu_seconds_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    storage_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: DEFAULT_STORAGE_QUOTA_BYTES. An organization's own quota wins."
    )

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_plan")
        ]

    def __str__(self) -> str:
        return self.name


QUOTA_LIMITS = (
    "api_requests_per_minute",
    "predictions_per_minute",
    "token_api_requests_per_minute",
    "token_predictions_per_minute",
    "gpu_seconds_per_month",
    "cpu_seconds_per_month",
)


class OrganizationQuota(models.Model):
    """An organization's plan and its own limits, set by operators (Django admin; every change is audited in the
    organization's chain). An empty limit takes the plan's; storage stays ``Organization.storage_quota_bytes``."""

    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE, related_name="quota")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="organizations")
    api_requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    predictions_per_minute = models.PositiveIntegerField(null=True, blank=True)
    token_api_requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    token_predictions_per_minute = models.PositiveIntegerField(null=True, blank=True)
    gpu_seconds_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    cpu_seconds_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization"]

    def __str__(self) -> str:
        return f"quota of {self.organization}"
