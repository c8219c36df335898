"""Registries an organization syncs into its catalog, their sync runs, and the link of each synced model.

A ``Registry`` belongs to one organization; the models a sync writes are ordinary catalog models of that
organization (``marketplace.Model``), seen through the one permission mechanism like any other. Each synced
model has a ``RegistryModel`` row: its id upstream, the fingerprint seen last, the sync that saw it last and,
when a complete listing no longer holds it, when it was found removed upstream (it is marked, never deleted).
In metadata mode a version's files are ``RemoteFile`` rows until someone downloads one; it is then fetched,
checked and stored as an ordinary ``VersionFile``.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.core.access import AccessPolicy, Role, Visibility
from apps.core.models import OwnedModel
from apps.core.validators import SLUG_VALIDATOR
from apps.organizations.models import OrganizationObjectPermissionBase

# A registry is an organization setting: its admins manage it; grants (view, change) open one to others.
ADMIN_ONLY = {"view": Role.ADMIN, "change": Role.ADMIN, "delete": Role.ADMIN, "run": Role.ADMIN, "share": Role.ADMIN}


class RegistryMode(models.TextChoices):
    METADATA = "metadata", "Metadata (files fetched on first use, then cached)"
    MIRROR = "mirror", "Mirror (files copied into the artifact store at sync)"


class Registry(OwnedModel):
    """A source of models (a backend and its configuration) that an organization's admins sync from.

    ``config`` holds the non-sensitive parameters; the sensitive ones are in ``credentials``, a Fernet token
    (apps/registries/crypto.py) that is never sent back. Filters (include/exclude glob patterns on model ids,
    tags, licenses) decide what enters the catalog. ``sync_interval_minutes`` 0 means manual syncs only.
    """

    access: ClassVar[AccessPolicy] = AccessPolicy(organization_field="organization", roles=ADMIN_ONLY)

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="registries")
    slug = models.CharField(max_length=50, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    backend = models.CharField(max_length=100, help_text="The backend's entry-point name, e.g. “huggingface”.")
    config = models.JSONField(default=dict, blank=True)
    credentials = models.TextField(blank=True, help_text="The sensitive parameters, encrypted (Fernet).")
    mode = models.CharField(max_length=10, choices=RegistryMode.choices, default=RegistryMode.METADATA)
    include_patterns = models.JSONField(default=list, blank=True)
    exclude_patterns = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True, help_text="Only models with at least one of these tags.")
    licenses = models.JSONField(default=list, blank=True, help_text="Only models under one of these licenses.")
    model_visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    sync_interval_minutes = models.PositiveIntegerField(default=0, help_text="0: only when someone starts a sync.")
    next_sync_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    last_sync = models.ForeignKey(
        "registries.RegistrySync", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    connection_error = models.TextField(blank=True, help_text="What the last connection check or sync was told.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization__slug", "slug"]
        verbose_name_plural = "registries"
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="registries_unique_slug")]
        indexes = [models.Index(fields=["enabled", "next_sync_at"])]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class RegistryUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Registry, on_delete=models.CASCADE)


class RegistryGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Registry, on_delete=models.CASCADE)


class RegistryOrganizationObjectPermission(OrganizationObjectPermissionBase):
    content_object = models.ForeignKey(Registry, on_delete=models.CASCADE)


class SyncTrigger(models.TextChoices):
    MANUAL = "manual", "Started by someone"
    SCHEDULE = "schedule", "The schedule"


class RegistrySync(OwnedModel):
    """One sync run of a registry: its job (status, progress, error) and what it did, counted.

    ``cursor`` is where the listing got to (after the last page written), so an attempt that runs again after a
    lost worker resumes there. ``complete`` is set when the whole listing was read: only then are models no
    longer listed marked as removed upstream. ``errors`` keeps the first per-model errors (capped).
    """

    # A grant on the registry reaches its sync runs.
    access: ClassVar[AccessPolicy] = AccessPolicy(
        organization_field="registry__organization", roles=ADMIN_ONLY, grants_via="registry"
    )

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="syncs")
    job = models.OneToOneField("core.Job", on_delete=models.CASCADE, related_name="registry_sync")
    trigger = models.CharField(max_length=10, choices=SyncTrigger.choices, default=SyncTrigger.MANUAL)
    cursor = models.TextField(blank=True)
    pages = models.PositiveIntegerField(default=0)
    seen = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Listed but left out by the registry's filters.")
    retries = models.PositiveIntegerField(default=0)
    files_fetched = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    complete = models.BooleanField(default=False)
    snapshot = models.CharField(
        max_length=500, blank=True, help_text="The registry's validator of the listing read, with the settings'."
    )
    unchanged_listing = models.BooleanField(
        default=False, help_text="The registry's snapshot had not changed: nothing was read again."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["registry", "-created_at"])]

    def summary(self) -> str:
        """The run's totals in one line, as its page and its job's last progress message say them."""
        text = (
            f"{self.seen:,} models read in {self.pages:,} pages: {self.created:,} new, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged, {self.failed:,} failed"
        )
        return text + (f", {self.removed:,} removed upstream" if self.removed else "")

    def __str__(self) -> str:
        return f"sync {self.pk} of {self.registry_id}"

    def counts(self) -> dict[str, int]:
        return {
            field: getattr(self, field)
            for field in ("seen", "created", "updated", "unchanged", "removed", "failed", "skipped", "retries")
        }


class RegistryModel(models.Model):
    """The link of a catalog model to the registry it came from."""

    # Indexed by the unique (registry, external_id); no index on last_seen_sync_id, so that marking a model
    # seen (every sync, every model) is an in-place (HOT) update that touches no index.
    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="links", db_index=False)
    model = models.OneToOneField("marketplace.Model", on_delete=models.CASCADE, related_name="registry_link")
    external_id = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64, blank=True)
    upstream_url = models.URLField(max_length=500, blank=True)
    last_seen_sync_id = models.BigIntegerField(null=True, blank=True)
    removed_upstream_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registry", "external_id"], name="registries_link_unique_external_id")
        ]

    def __str__(self) -> str:
        return f"{self.registry_id}:{self.external_id}"


class RemoteFile(models.Model):
    """A file of a synced version that is still upstream (metadata mode): fetched on first use, then cached."""

    version = models.ForeignKey(
        "marketplace.ModelVersion", on_delete=models.CASCADE, related_name="remote_files", db_index=False
    )  # indexed by the unique (version, path)
    path = models.CharField(max_length=500)
    upstream_label = models.CharField(max_length=200, blank=True, help_text="The version's label in the registry.")
    size = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(0)])
    sha256 = models.CharField(max_length=64, blank=True)
    locator = models.TextField(blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    fetch_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "path"], name="registries_remote_file_unique_path")]

    def __str__(self) -> str:
        return self.path
