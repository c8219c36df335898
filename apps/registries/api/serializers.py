"""Registry API representations. Sensitive parameters are write-only: reads say which are set, never their value."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from apps.core.access import Visibility
from apps.core.api.serializers import CachedFieldsModelSerializer
from apps.registries.models import Registry, RegistryMode, RegistrySync
from apps.registries.sdk.discovery import backend_class


class SyncSerializer(CachedFieldsModelSerializer):
    """One run: its job's state and what it did."""

    status = serializers.CharField(source="job.status", read_only=True)
    progress = serializers.FloatField(source="job.progress", read_only=True)
    progress_message = serializers.CharField(source="job.progress_message", read_only=True)
    error = serializers.CharField(source="job.error", read_only=True)
    started_at = serializers.DateTimeField(source="job.started_at", read_only=True)
    finished_at = serializers.DateTimeField(source="job.finished_at", read_only=True)
    job_url = serializers.SerializerMethodField()

    class Meta:
        model = RegistrySync
        fields = [
            "id",
            "trigger",
            "status",
            "progress",
            "progress_message",
            "error",
            "seen",
            "created",
            "updated",
            "unchanged",
            "removed",
            "failed",
            "skipped",
            "retries",
            "files_fetched",
            "pages",
            "complete",
            "errors",
            "created_at",
            "started_at",
            "finished_at",
            "job_url",
        ]
        read_only_fields = fields

    def get_job_url(self, sync: RegistrySync) -> str:
        return reverse("api:job-detail", kwargs={"uuid": sync.job.uuid}, request=self.context.get("request"))


class RegistrySerializer(CachedFieldsModelSerializer):
    credentials_set = serializers.SerializerMethodField()
    backend_label = serializers.SerializerMethodField()
    model_count = serializers.IntegerField(read_only=True, default=None)
    last_sync = SyncSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Registry
        fields = [
            "uuid",
            "slug",
            "name",
            "description",
            "backend",
            "backend_label",
            "config",
            "credentials_set",
            "mode",
            "include_patterns",
            "exclude_patterns",
            "tags",
            "licenses",
            "model_visibility",
            "sync_interval_minutes",
            "next_sync_at",
            "enabled",
            "connection_error",
            "model_count",
            "last_sync",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_credentials_set(self, registry: Registry) -> list[str]:
        cls = backend_class(registry.backend)
        return sorted(cls.sensitive_parameters()) if cls and registry.credentials else []

    def get_backend_label(self, registry: Registry) -> str:
        cls = backend_class(registry.backend)
        return (cls.label or cls.name) if cls else f"{registry.backend} (not installed)"


class RegistryWriteSerializer(serializers.Serializer):
    """The body of a create or update; the service validates every value (errors name the field)."""

    slug = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    name = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True)
    backend = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    config = serializers.JSONField(required=False, help_text="The backend's parameters; sensitive ones write-only.")
    mode = serializers.ChoiceField(choices=RegistryMode.choices, required=False)
    include_patterns = serializers.JSONField(required=False)
    exclude_patterns = serializers.JSONField(required=False)
    tags = serializers.JSONField(required=False)
    licenses = serializers.JSONField(required=False)
    model_visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    sync_interval_minutes = serializers.IntegerField(required=False, min_value=0)
    enabled = serializers.BooleanField(required=False)

    def fields_given(self) -> dict[str, Any]:
        return dict(self.validated_data)


class BackendSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.ListField(child=serializers.DictField())


class ConnectionCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
