"""Usage events: one row per counted use of an organization's objects (a download, later an inference call)."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.access import AccessPolicy, Role
from apps.core.models import OwnedModel


class UsageKind(models.TextChoices):
    DOWNLOAD = "download", "download"


class UsageEvent(OwnedModel):
    """One counted use: who (``actor``, null for anonymous callers), of what (``subject_type``/``subject_id``,
    e.g. ``marketplace.modelversion`` and the version's UUID, plus the file's path and blob), how many bytes
    were sent and with which HTTP status.

    ``organization`` is the organization that owns what was used; its admins see its usage. The subject is
    kept as text, not a foreign key, so that usage survives the purge of what was used.
    """

    access: ClassVar[AccessPolicy] = AccessPolicy(
        roles={"view": Role.ADMIN, "change": Role.OWNER, "delete": Role.OWNER}, grants=False
    )

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="usage_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_events"
    )
    kind = models.CharField(max_length=40, choices=UsageKind.choices)
    subject_type = models.CharField(max_length=100, help_text="e.g. “marketplace.modelversion”.")
    subject_id = models.CharField(max_length=64, help_text="The subject's UUID.")
    subject_label = models.CharField(max_length=300, blank=True, help_text="e.g. “acme/iris@1.0.0”.")
    path = models.CharField(max_length=500, blank=True)
    blob_sha256 = models.CharField(max_length=64, blank=True)
    bytes = models.BigIntegerField(default=0, help_text="Bytes sent (0 for HEAD, 304 or an offloaded download).")
    status_code = models.PositiveSmallIntegerField(default=200)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "kind", "-created_at"]),
            models.Index(fields=["actor", "kind", "subject_type", "subject_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_label or self.subject_id} by {self.actor_id or 'anonymous'}"
