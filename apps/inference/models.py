"""Inference: deployments and their revision history, predictions, batch jobs, pipelines, performance cards.

Every piece of work is a ``core.Job`` (DESIGN.md, "Background work"); the tables here link to a job one-to-one
for what more it needs: ``InferenceJob`` (one prediction: the version and deployment revision that served it,
its inputs, the provider really used and its timings), ``BatchInference`` (a file of rows in, a file of results
out, resumable at ``rows_done``) and ``PipelineRun``. A ``Deployment`` is a named, stable endpoint of an
organization for a model version or alias; each change writes a ``DeploymentRevision``, so the history says
which version served a request at any time. ``PerformanceCard`` is what the measuring job found for a version.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.core.access import AccessPolicy, Role, Visibility
from apps.core.models import OwnedModel
from apps.core.validators import SLUG_VALIDATOR
from apps.organizations.models import OrganizationObjectPermissionBase

DEPLOYMENT_ROLES = {
    "view": Role.VIEWER,
    "run": Role.MEMBER,
    "change": Role.MEMBER,
    "delete": Role.ADMIN,
    "share": Role.ADMIN,
}


class Device(models.TextChoices):
    AUTO = "auto", "GPU when a GPU worker is up, else CPU"
    GPU = "gpu", "GPU"
    CPU = "cpu", "CPU"


class Provider(models.TextChoices):
    """Execution providers a deployment may ask for; ``auto`` takes the best the worker has."""

    AUTO = "auto", "best available (TensorRT > CUDA > ROCm > OpenVINO > CoreML > CPU)"
    TENSORRT = "tensorrt", "TensorRT"
    CUDA = "cuda", "CUDA"
    ROCM = "rocm", "ROCm"
    OPENVINO = "openvino", "OpenVINO"
    COREML = "coreml", "CoreML"
    CPU = "cpu", "CPU"


class DeploymentStatus(models.TextChoices):
    ACTIVE = "active", "active"
    PAUSED = "paused", "paused"


class Deployment(OwnedModel):
    """A named endpoint ``{org}/{slug}`` serving a model's version (or whatever an alias points at).

    ``canary_version`` takes ``canary_percent`` of the traffic. Batching merges concurrent requests up to
    ``max_batch_size`` items or ``max_delay_ms`` of waiting (1 disables it); ``concurrency`` caps the requests
    in flight (more answer 429). Runs need the ``run`` right on the deployment; callers do not need rights
    on the model behind it (the deployment's organization chose to expose it).
    """

    access: ClassVar[AccessPolicy] = AccessPolicy(
        organization_field="organization", visibility_field="visibility", roles=DEPLOYMENT_ROLES
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="deployments", db_index=False
    )
    slug = models.CharField(max_length=50, validators=[SLUG_VALIDATOR])
    description = models.CharField(max_length=500, blank=True)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    model = models.ForeignKey("marketplace.Model", on_delete=models.PROTECT, related_name="deployments")
    version = models.ForeignKey(
        "marketplace.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    alias = models.CharField(
        max_length=64, blank=True, help_text="Serve what this alias points at (instead of a version)."
    )
    canary_version = models.ForeignKey(
        "marketplace.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    canary_percent = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    device = models.CharField(max_length=4, choices=Device.choices, default=Device.AUTO)
    provider = models.CharField(max_length=10, choices=Provider.choices, default=Provider.AUTO)
    max_batch_size = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(1024)])
    max_delay_ms = models.PositiveIntegerField(default=5, validators=[MaxValueValidator(1000)])
    concurrency = models.PositiveIntegerField(default=64, validators=[MinValueValidator(1), MaxValueValidator(10_000)])
    timeout_seconds = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(3600)]
    )
    status = models.CharField(max_length=6, choices=DeploymentStatus.choices, default=DeploymentStatus.ACTIVE)
    revision = models.PositiveIntegerField(default=0, help_text="The number of the current revision.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization__slug", "slug"]
        permissions = [("run_deployment", "Can run the deployment")]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="inference_deployment_unique_slug"),
            models.CheckConstraint(
                condition=models.Q(canary_percent__lte=100), name="inference_deployment_canary_percent_max_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"

    @property
    def full_name(self) -> str:
        return str(self)


class DeploymentUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Deployment, on_delete=models.CASCADE)


class DeploymentGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Deployment, on_delete=models.CASCADE)


class DeploymentOrganizationObjectPermission(OrganizationObjectPermissionBase):
    content_object = models.ForeignKey(Deployment, on_delete=models.CASCADE)


class DeploymentRevision(models.Model):
    """One state of a deployment, from ``created_at`` until the next revision: what it served and how.

    ``config`` is the whole serving configuration (versions by uuid and label, canary split, provider, batching),
    so a rollback copies an earlier revision's config into a new revision.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    config = models.JSONField(default=dict)
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["deployment", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "number"], name="inference_revision_unique_number")
        ]
        indexes = [models.Index(fields=["deployment", "created_at"])]

    def __str__(self) -> str:
        return f"{self.deployment} r{self.number}"


class InferenceJob(models.Model):
    """One prediction: the Job it is, the version that served it (through which deployment revision), the
    validated inputs (``execution.pack_tensors`` bytes), the provider ONNX Runtime really used and the timings of
    each stage."""

    job = models.OneToOneField("core.Job", on_delete=models.CASCADE, primary_key=True, related_name="inference")
    # ``version`` and ``deployment`` are found through Meta.indexes, which lead with them: no second index each, to
    # write on every prediction's insert.
    version = models.ForeignKey(
        "marketplace.ModelVersion", on_delete=models.CASCADE, related_name="inference_jobs", db_index=False
    )
    deployment = models.ForeignKey(
        Deployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="inference_jobs", db_index=False
    )
    revision = models.ForeignKey(
        DeploymentRevision, on_delete=models.SET_NULL, null=True, blank=True, related_name="inference_jobs"
    )
    inputs = models.BinaryField(
        help_text="The validated model inputs: a JSON header, then the tensors' bytes (.npz in older rows); empty "
        "for readable inputs."
    )
    raw_inputs = models.JSONField(null=True, blank=True, help_text="Readable inputs (text, images) before processing.")
    outputs = models.BinaryField(
        null=True,
        blank=True,
        help_text="The model's tensor outputs, as the inputs are kept (a JSON header, then the tensors' bytes).",
    )
    error_fields = models.JSONField(
        null=True, blank=True, help_text="Input errors by field, when the input was refused."
    )
    encoding = models.CharField(max_length=8, default="json", help_text="How the answer encodes tensors.")
    device = models.CharField(max_length=4, choices=Device.choices, default=Device.AUTO)
    provider_requested = models.CharField(max_length=10, choices=Provider.choices, default=Provider.AUTO)
    provider = models.CharField(max_length=40, blank=True, help_text="What session.get_providers()[0] said.")
    worker = models.CharField(max_length=200, blank=True)
    batch_size = models.PositiveIntegerField(default=1, help_text="Items in the batch it ran in (merged requests).")
    items = models.PositiveIntegerField(default=1, help_text="Items in this request.")
    timings = models.JSONField(default=dict, blank=True, help_text="Milliseconds: queued, load, run, total ...")
    webhook_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["deployment", "created_at"]),
            models.Index(fields=["version", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"prediction {self.job_id} of {self.version_id}"


class WebhookDelivery(models.Model):
    """One attempt to deliver a finished job's webhook: what was sent, what came back."""

    job = models.ForeignKey("core.Job", on_delete=models.CASCADE, related_name="webhook_deliveries")
    url = models.URLField(max_length=2000)
    attempt = models.PositiveSmallIntegerField(default=1)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True)
    response_excerpt = models.CharField(max_length=1000, blank=True)
    succeeded = models.BooleanField(default=False)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "attempt"]

    def __str__(self) -> str:
        return f"webhook {self.job_id} #{self.attempt}"


class WebhookSecret(models.Model):
    """The secret an organization's webhooks are signed with (HMAC-SHA256), encrypted like registry credentials."""

    organization = models.OneToOneField(
        "organizations.Organization", on_delete=models.CASCADE, related_name="webhook_secret"
    )
    secret = models.TextField(help_text="Fernet token of the secret.")
    rotated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"webhook secret of {self.organization_id}"


class BatchFormat(models.TextChoices):
    JSONL = "jsonl", "JSON Lines"
    CSV = "csv", "CSV"
    NPZ = "npz", "NumPy .npz"


class BatchInference(models.Model):
    """A batch job: a file of rows in, a file of results out, run in chunks; ``rows_done`` is where a
    restarted attempt resumes, ``rows_failed`` the rows whose own input was refused (kept in the results)."""

    job = models.OneToOneField("core.Job", on_delete=models.CASCADE, primary_key=True, related_name="batch")
    version = models.ForeignKey("marketplace.ModelVersion", on_delete=models.CASCADE, related_name="batch_jobs")
    deployment = models.ForeignKey(Deployment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    input_file = models.FileField(upload_to="inference/batch-inputs/", max_length=300)
    input_format = models.CharField(max_length=5, choices=BatchFormat.choices)
    input_name = models.CharField(max_length=255, blank=True, help_text="The uploaded file's name.")
    output_file = models.FileField(upload_to="inference/batch-results/", max_length=300, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    chunk_size = models.PositiveIntegerField(default=32, validators=[MinValueValidator(1), MaxValueValidator(4096)])
    provider = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"batch {self.job_id}"


class Pipeline(OwnedModel):
    """A chain or small DAG of model versions, saved once validated against their signatures.

    ``steps`` is a list of ``{"name", "version": "<uuid>", "inputs": {"<model input>": "input.<name>" |
    "<step>.<output>"}}``; a step reads the pipeline's inputs or earlier steps' outputs only.
    """

    access: ClassVar[AccessPolicy] = AccessPolicy(organization_field="organization", roles=DEPLOYMENT_ROLES)

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="pipelines", db_index=False
    )
    slug = models.CharField(max_length=50, validators=[SLUG_VALIDATOR])
    description = models.CharField(max_length=500, blank=True)
    steps = models.JSONField(default=list)
    outputs = models.JSONField(default=dict, blank=True, help_text="Pipeline output name -> “<step>.<output>”.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization__slug", "slug"]
        permissions = [("run_pipeline", "Can run the pipeline")]
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="inference_pipeline_unique_slug")]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class PipelineUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Pipeline, on_delete=models.CASCADE)


class PipelineGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Pipeline, on_delete=models.CASCADE)


class PipelineRun(models.Model):
    """One run of a pipeline: the Job, the inputs (``.npz``) and each step's timing and provider."""

    job = models.OneToOneField("core.Job", on_delete=models.CASCADE, primary_key=True, related_name="pipeline_run")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="runs")
    inputs = models.BinaryField()
    steps = models.JSONField(default=list, blank=True, help_text="Per step: name, version, provider, ms.")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pipeline run {self.job_id}"


class PerformanceCard(models.Model):
    """What the measuring job found for a version on a worker: latency at batch 1 and at its best batch size,
    throughput, memory and the provider really used. The newest card of a version is shown on its page."""

    version = models.ForeignKey("marketplace.ModelVersion", on_delete=models.CASCADE, related_name="performance_cards")
    job = models.OneToOneField("core.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    provider = models.CharField(max_length=40)
    device = models.CharField(max_length=200, blank=True, help_text="The CPU or GPU it ran on.")
    latency_p50_ms = models.FloatField()
    latency_p95_ms = models.FloatField()
    best_batch_size = models.PositiveIntegerField(default=1)
    best_batch_p50_ms = models.FloatField(null=True, blank=True)
    best_batch_p95_ms = models.FloatField(null=True, blank=True)
    throughput = models.FloatField(help_text="Items per second at the best batch size.")
    memory_mb = models.FloatField(help_text="Resident memory the session added, in MiB.")
    details = models.JSONField(default=dict, blank=True, help_text="Every batch size measured.")
    measured_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["version", "-measured_at"]
        indexes = [models.Index(fields=["version", "-measured_at"])]

    def __str__(self) -> str:
        return f"performance of {self.version_id} on {self.provider}"
