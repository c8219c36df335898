"""The audit trail: append-only events in hash chains, one per organization plus one for the platform."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import uuid
from datetime import UTC

from django.conf import settings
from django.db import models
from django.utils import timezone

GENESIS_HASH = "0" * 64


class AuditChain(models.Model):
    """The head of one hash chain. Writers lock this row (``select_for_update``) so a chain never forks."""

    PLATFORM_KEY = "platform"

    key = models.CharField(max_length=64, unique=True, help_text="“platform” or “org:<id>”.")
    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    head_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key

    @classmethod
    def key_for(cls, organization_id: int | None) -> str:
        return cls.PLATFORM_KEY if organization_id is None else f"org:{organization_id}"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Audit events are append-only: they cannot be updated.")


class AuditEvent(models.Model):
    """One recorded action. Its ``hash`` covers the previous event's hash and a canonical JSON of its fields.

    Organization and actor are kept as plain ids (no database constraint) so that deleting either never
    rewrites history; ``actor_label`` keeps who it was.
    """

    class Kind(models.TextChoices):
        EVENT = "event"
        CHECKPOINT = "checkpoint"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    chain = models.ForeignKey(AuditChain, on_delete=models.PROTECT, related_name="events")
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EVENT)
    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    diff = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["chain", "seq"]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="unique_audit_chain_seq")]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["organization", "action", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.chain.key}#{self.seq} {self.action}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise TypeError("Audit events are append-only: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only: only retention (apps.audit.services) removes old ones.")

    HASHED_FIELDS = (
        "uuid",
        "seq",
        "kind",
        "organization_id",
        "actor_id",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "ip",
        "user_agent",
        "diff",
        "metadata",
        "created_at",
    )

    def canonical_json(self) -> str:
        data = {}
        for name in self.HASHED_FIELDS:
            value = getattr(self, name)
            if name == "created_at":
                value = value.astimezone(UTC).isoformat(timespec="microseconds")
            elif name == "uuid":
                value = str(value)
            elif name == "ip" and value:
                # The database may spell an address differently than it was given (PostgreSQL's inet
                # shortens IPv6): hash the address, not its spelling.
                value = str(ipaddress.ip_address(value))
            data[name] = value
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)

    def compute_hash(self) -> str:
        """sha256 over the previous event's hash followed by this event's canonical JSON."""
        return hashlib.sha256((self.prev_hash + self.canonical_json()).encode()).hexdigest()
