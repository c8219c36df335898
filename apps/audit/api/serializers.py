from __future__ import annotations

from rest_framework import serializers

from apps.audit.exports import EXPORT_FIELDS
from apps.audit.models import AuditEvent
from apps.core.api.serializers import CachedFieldsModelSerializer


class AuditEventSerializer(CachedFieldsModelSerializer):
    """One event as the API lists it: the same fields, in the same order, as the CSV and JSON lines exports."""

    actor = serializers.CharField(
        source="actor.handle",
        read_only=True,
        allow_null=True,
        help_text="The actor's current handle; null for system events or once the user is deleted.",
    )
    actor_label = serializers.CharField(read_only=True, help_text="Who acted, as recorded then (their e-mail).")
    ip = serializers.IPAddressField(read_only=True, allow_null=True)
    diff = serializers.JSONField(read_only=True, help_text="Changed fields: {field: [old, new]}.")
    metadata = serializers.JSONField(read_only=True)

    class Meta:
        model = AuditEvent
        # The same columns, in the same order, as the CSV and JSON lines exports.
        fields = list(EXPORT_FIELDS)
        read_only_fields = fields
