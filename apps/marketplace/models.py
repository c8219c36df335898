"""The model catalog: models, their versions and files, aliases, content-addressed blobs and upload sessions.

A ``Model`` belongs to an organization and is addressed ``{owner}/{name}``. Its ``ModelVersion`` rows carry a
label unique per model and are immutable once published. A version's files (``VersionFile``) point at
``Blob`` rows: every file is stored once by its SHA-256, whatever organization uploaded it.
"""

from __future__ import annotations

import re
import uuid
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.core.access import AccessPolicy, Role, Visibility
from apps.core.models import OwnedModel
from apps.marketplace.querysets import ModelManager, ModelQuerySet, VersionQuerySet
from apps.organizations.models import OrganizationObjectPermissionBase

MODEL_NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9]|[-._](?=[a-z0-9])){0,95}$")
MODEL_NAME_RULES = "1 to 96 characters: lowercase letters, digits, and single hyphens, dots or underscores between them"
VERSION_LABEL_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|[-._+](?=[A-Za-z0-9])){0,63}$")
VERSION_LABEL_RULES = (
    "1 to 64 characters: letters, digits, and single . - _ + between them (e.g. 1.0.0, v2, 2024-06-01)"
)
ALIAS_NAME_PATTERN = re.compile(r"^[a-z](?:[a-z0-9]|[-_](?=[a-z0-9])){0,39}$")
ALIAS_NAME_RULES = (
    "1 to 40 characters: lowercase letters, digits, single hyphens or underscores, starting with a letter"
)
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def validate_model_name(value: str) -> None:
    if not isinstance(value, str) or not MODEL_NAME_PATTERN.match(value):
        raise ValidationError(f"Enter a valid model name: {MODEL_NAME_RULES}.", code="invalid_name")


def validate_version_label(value: str) -> None:
    if not isinstance(value, str) or not VERSION_LABEL_PATTERN.match(value):
        raise ValidationError(f"Enter a valid version label: {VERSION_LABEL_RULES}.", code="invalid_label")


def validate_alias_name(value: str) -> None:
    if not isinstance(value, str) or not ALIAS_NAME_PATTERN.match(value):
        raise ValidationError(f"Enter a valid alias name: {ALIAS_NAME_RULES}.", code="invalid_alias")


def validate_sha256(value: str) -> None:
    if not isinstance(value, str) or not SHA256_PATTERN.match(value):
        raise ValidationError("Enter a SHA-256 digest: 64 lowercase hexadecimal characters.", code="invalid_sha256")


def blob_storage_name(sha256: str) -> str:
    """Where a blob lives in the default storage: ``blobs/sha256/<aa>/<bb>/<sha256>``."""
    return f"blobs/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class Blob(models.Model):
    """A file's bytes, stored once under their SHA-256 in Django's default storage.

    Global, not owned: the same bytes uploaded by two organizations are one Blob. Who may read it follows from
    the versions that reference it (``VersionFile``). A blob no version references is removed by the purge job.
    """

    sha256 = models.CharField(max_length=64, unique=True, validators=[validate_sha256])
    size = models.BigIntegerField()
    storage_name = models.CharField(max_length=300, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    referenced_at = models.DateTimeField(
        default=timezone.now, help_text="When these bytes were last uploaded; the purge spares recent blobs."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(size__gte=0), name="marketplace_blob_size_positive")]

    def __str__(self) -> str:
        return f"sha256:{self.sha256}"


class Model(OwnedModel):
    """A machine-learning model of an organization, addressed ``{owner}/{name}``, with its card and versions.

    Deleting is soft: ``deleted_at`` hides it everywhere (the default manager leaves it out) and
    ``purge_after`` says when the purge job may remove it for good; until then it can be restored.
    """

    access: ClassVar[AccessPolicy] = AccessPolicy(
        organization_field="organization",
        visibility_field="visibility",
        roles={
            "view": Role.VIEWER,
            "change": Role.MEMBER,
            "run": Role.MEMBER,
            "delete": Role.ADMIN,
            "share": Role.ADMIN,
        },
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No index of its own: the unique (organization, name) index serves lookups by organization, and every
    # index is paid on each insert (a registry sync writes models by the hundred thousand).
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="models", db_index=False
    )
    name = models.CharField(max_length=96, validators=[validate_model_name])
    summary = models.CharField(max_length=300, blank=True)
    card = models.TextField(blank=True, max_length=200_000, help_text="The model card, in Markdown.")
    task = models.CharField(max_length=60, blank=True, help_text="e.g. “text-classification”, “feature-extraction”.")
    tags = models.JSONField(default=list, blank=True)
    license = models.CharField(max_length=100, blank=True)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    source_registry = models.CharField(max_length=100, blank=True, help_text="The registry it was synced from.")
    external_id = models.CharField(max_length=300, blank=True, help_text="Its id in that registry.")
    # Indexed where set only (Meta.indexes): a synced model has no creator, nor a purge date until deleted.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(null=True, blank=True)

    objects = ModelManager()
    with_deleted = ModelQuerySet.as_manager()

    class Meta:
        ordering = ["organization__slug", "name"]
        base_manager_name = "with_deleted"
        permissions = [("run_model", "Can run the model")]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="marketplace_model_unique_name")]
        indexes = [
            models.Index(fields=["visibility", "deleted_at"]),
            models.Index(fields=["task"]),
            models.Index(
                fields=["purge_after"], name="marketplace_model_purge_after", condition=Q(purge_after__isnull=False)
            ),
            models.Index(
                fields=["created_by"], name="marketplace_model_created_by", condition=Q(created_by__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.name}"

    @property
    def full_name(self) -> str:
        return str(self)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class ModelUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Model, on_delete=models.CASCADE)


class ModelGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Model, on_delete=models.CASCADE)


class ModelOrganizationObjectPermission(OrganizationObjectPermissionBase):
    content_object = models.ForeignKey(Model, on_delete=models.CASCADE)


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    PUBLISHED = "published", "published"
    DEPRECATED = "deprecated", "deprecated"
    YANKED = "yanked", "yanked"


class ValidationStatus(models.TextChoices):
    NONE = "none", "not validated"
    PENDING = "pending", "pending"
    PASSED = "passed", "passed"
    FAILED = "failed", "failed"


class ModelVersion(OwnedModel):
    """One version of a model: a label unique per model, its files, signature and validation outcome.

    A draft takes files and changes; publishing (only once validation passed) freezes its label and files.
    Deprecated versions stay downloadable; yanked ones are hidden from new users and kept for those who
    pinned them. Access follows the model (grants on the model reach its versions).
    """

    access: ClassVar[AccessPolicy] = AccessPolicy(
        organization_field="model__organization",
        visibility_field="model__visibility",
        roles={"view": Role.VIEWER, "change": Role.MEMBER, "run": Role.MEMBER, "delete": Role.ADMIN},
        grants_via="model",
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model = models.ForeignKey(
        Model, on_delete=models.CASCADE, related_name="versions", db_index=False
    )  # (model, label)
    label = models.CharField(max_length=64, validators=[validate_version_label])
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    changelog = models.TextField(blank=True, max_length=50_000)
    signature = models.JSONField(default=dict, blank=True, help_text="Inputs and outputs: name, elem_type, shape.")
    onnx_info = models.JSONField(default=dict, blank=True, help_text="IR version, opsets, producer, custom domains.")
    detected_task = models.CharField(max_length=60, blank=True)
    validation_status = models.CharField(max_length=8, choices=ValidationStatus.choices, default=ValidationStatus.NONE)
    validation_message = models.TextField(blank=True)
    # This FK and created_by are indexed where set only (Meta.indexes): synced versions have neither.
    validation_job = models.ForeignKey(
        "core.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    published_at = models.DateTimeField(null=True, blank=True)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    yanked_at = models.DateTimeField(null=True, blank=True)
    yank_reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VersionQuerySet.as_manager()

    class Meta:
        ordering = ["model", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["model", "label"], name="marketplace_version_unique_label")]
        indexes = [
            models.Index(fields=["model", "status"]),
            models.Index(
                fields=["validation_job"],
                name="marketplace_version_job",
                condition=Q(validation_job__isnull=False),
            ),
            models.Index(
                fields=["created_by"], name="marketplace_version_creator", condition=Q(created_by__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model}@{self.label}"

    @property
    def is_draft(self) -> bool:
        return self.status == VersionStatus.DRAFT

    @property
    def is_frozen(self) -> bool:
        """Published, deprecated and yanked versions never change their label or files."""
        return self.status != VersionStatus.DRAFT


class FileRole(models.TextChoices):
    MODEL = "model", "ONNX model"
    EXTERNAL_DATA = "external_data", "external tensor data"
    TOKENIZER = "tokenizer", "tokenizer"
    LABELS = "labels", "labels"
    MANIFEST = "manifest", "gpux.yml manifest"
    OTHER = "other", "other"


class VersionFile(models.Model):
    """A file of a version: a relative, normalized ``path`` (``model.onnx``, ``tokenizer.json``...) and its blob."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=500)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="version_files")
    role = models.CharField(max_length=16, choices=FileRole.choices, default=FileRole.OTHER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["version", "path"]
        constraints = [models.UniqueConstraint(fields=["version", "path"], name="marketplace_file_unique_path")]

    def __str__(self) -> str:
        return f"{self.version}/{self.path}"

    @property
    def size(self) -> int:
        return self.blob.size

    @property
    def sha256(self) -> str:
        return self.blob.sha256


class Alias(models.Model):
    """A movable name for one of a model's versions (``production``, ``staging``); its moves are kept."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="aliases", db_index=False)  # (model, name)
    name = models.CharField(max_length=40, validators=[validate_alias_name])
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "name"]
        verbose_name_plural = "aliases"
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="marketplace_alias_unique_name")]

    def __str__(self) -> str:
        return f"{self.model}:{self.name}"


class AliasChange(models.Model):
    """One move of an alias: from which version (none when it was created) to which, by whom, when."""

    alias = models.ForeignKey(Alias, on_delete=models.CASCADE, related_name="changes")
    from_version = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    to_version = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    from_label = models.CharField(max_length=64, blank=True)
    to_label = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.alias}: {self.from_label or '∅'} → {self.to_label}"


class UploadStatus(models.TextChoices):
    OPEN = "open", "open"
    VERIFYING = "verifying", "verifying"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"
    ABORTED = "aborted", "aborted"
    EXPIRED = "expired", "expired"


# Sessions that still hold their spool file and their quota reservation.
LIVE_UPLOAD_STATUSES = (UploadStatus.OPEN, UploadStatus.VERIFYING)


class UploadSession(models.Model):
    """A resumable upload of one file into a draft version: declared path, size and SHA-256, bytes so far.

    Chunks are appended to a spool file in ``MARKETPLACE_UPLOAD_DIR`` at ``offset``; completing checks the size
    and digest and adds the file to the version. The declared size counts against the organization's quota
    while the session is open or verifying. Sessions expire after ``MARKETPLACE_UPLOAD_SESSION_TTL_HOURS``.

    A large file is verified by a ``marketplace.complete_upload`` job (``job``, the latest one): the session is
    ``verifying`` while it runs, then ``completed`` (``file``) or ``failed`` (``error`` says why). A refusal in the
    request (size or SHA-256 mismatch) also leaves it ``failed`` with ``error``; ``aborted`` is the uploader's
    ``DELETE``.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="upload_sessions")
    path = models.CharField(max_length=500)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, validators=[validate_sha256])
    offset = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=UploadStatus.choices, default=UploadStatus.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    file = models.ForeignKey(VersionFile, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    job = models.ForeignKey("core.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "expires_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(offset__gte=0, size__gte=0), name="marketplace_upload_offset_size_positive"
            )
        ]

    def __str__(self) -> str:
        return f"upload {self.uuid} of {self.path} ({self.offset}/{self.size})"

    @property
    def is_expired(self) -> bool:
        return self.status == UploadStatus.EXPIRED or (
            self.status in LIVE_UPLOAD_STATUSES and self.expires_at <= timezone.now()
        )

    @property
    def spool_path(self):
        return settings.MARKETPLACE_UPLOAD_DIR / "sessions" / f"{self.uuid}.part"
