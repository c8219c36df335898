"""Serializers of the inference API: deployments and their revisions, predictions (the answer is built by
``apps.inference.predictions.answer_of``, documented here for the OpenAPI schema), webhook deliveries."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.access import Visibility
from apps.core.api.serializers import CachedFieldsModelSerializer, absolute_url
from apps.inference.models import (
    Deployment,
    DeploymentRevision,
    DeploymentStatus,
    Device,
    Provider,
    WebhookDelivery,
)


class DeploymentSerializer(CachedFieldsModelSerializer):
    """A deployment as its organization's members see it. To a caller who may not view its model (an outsider on a
    public deployment of a private organization) ``model``, ``version``, ``alias`` and ``canary_version`` are
    ``null``: the deployment answers under its own name and ``revision`` (the context's ``viewable_models``)."""

    MODEL_FIELDS = ("model", "version", "alias", "canary_version")

    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model = serializers.CharField(source="model.name", read_only=True, allow_null=True)
    version = serializers.CharField(source="version.label", read_only=True, allow_null=True, default=None)
    canary_version = serializers.CharField(source="canary_version.label", read_only=True, allow_null=True, default=None)
    url = serializers.SerializerMethodField()
    predict_url = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "uuid", "url", "predict_url", "organization", "slug", "description", "visibility", "model", "version",
            "alias", "canary_version", "canary_percent", "device", "provider", "max_batch_size", "max_delay_ms",
            "concurrency", "timeout_seconds", "status", "revision", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, deployment: Deployment) -> dict:
        data = super().to_representation(deployment)
        viewable = self.context.get("viewable_models")
        if viewable is not None and deployment.model_id not in viewable:
            data.update(dict.fromkeys(self.MODEL_FIELDS))
        return data

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, deployment: Deployment) -> str:
        kwargs = {"org_slug": deployment.organization.slug, "slug": deployment.slug}
        return absolute_url(self.context.get("request"), reverse("api:deployment-detail", kwargs=kwargs))

    @extend_schema_field(OpenApiTypes.URI)
    def get_predict_url(self, deployment: Deployment) -> str:
        kwargs = {"org_slug": deployment.organization.slug, "slug": deployment.slug}
        return absolute_url(self.context.get("request"), reverse("api:deployment-predict", kwargs=kwargs))


class DeploymentWriteSerializer(serializers.Serializer):
    """What a deployment is made or changed with; versions by label, the model by name (of the organization)."""

    slug = serializers.CharField(max_length=50)
    model = serializers.CharField(max_length=96, help_text="The name of one of the organization's models.")
    version = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
    alias = serializers.CharField(max_length=64, required=False, allow_blank=True)
    canary_version = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
    canary_percent = serializers.IntegerField(min_value=0, max_value=100, required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    device = serializers.ChoiceField(choices=Device.choices, required=False)
    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    max_batch_size = serializers.IntegerField(min_value=1, max_value=1024, required=False)
    max_delay_ms = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    concurrency = serializers.IntegerField(min_value=1, max_value=10_000, required=False)
    timeout_seconds = serializers.IntegerField(min_value=1, max_value=3600, required=False)
    status = serializers.ChoiceField(choices=DeploymentStatus.choices, required=False)
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, help_text="Why (in the history).")

    def fields_given(self) -> dict:
        return {name: value for name, value in self.validated_data.items() if name in self.initial_data}


class RollbackSerializer(serializers.Serializer):
    revision = serializers.IntegerField(
        min_value=1, required=False, help_text="The revision to serve again (default: the one before the current)."
    )


class DeploymentRevisionSerializer(CachedFieldsModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="handle", read_only=True, allow_null=True)

    class Meta:
        model = DeploymentRevision
        fields = ["number", "config", "reason", "created_by", "created_at"]
        read_only_fields = fields


class PredictionRequestSerializer(serializers.Serializer):
    """``{"inputs": {"<input>": <tensor>} | {"text": "..."} | {"image": "<base64>"}, "encoding": "json",
    "timeout": 5, "webhook_url": "https://..."}``; or a ``.npz`` body (``Content-Type: application/x-npz``)."""

    inputs = serializers.JSONField(
        help_text="Tensors by input name (JSON lists, {b64,dtype,shape} or {npy}), or text/image."
    )
    encoding = serializers.ChoiceField(
        choices=["json", "b64", "npy"], required=False, help_text="How outputs are encoded."
    )
    timeout = serializers.FloatField(required=False, help_text="Seconds to wait before answering 202 with the job URL.")
    webhook_url = serializers.URLField(required=False, help_text="POSTed the signed answer when the job finishes.")


class PredictionSerializer(serializers.Serializer):
    """A prediction: its job, status, outputs, readable answer, provider really used and timings."""

    job = serializers.UUIDField()
    url = serializers.URLField()
    status = serializers.CharField()
    model = serializers.CharField(allow_null=True, help_text="Null when you may not view a deployment's model.")
    version = serializers.CharField(allow_null=True, help_text="Null when you may not view a deployment's model.")
    deployment = serializers.CharField(allow_null=True)
    revision = serializers.IntegerField(allow_null=True, help_text="The deployment's revision that served it.")
    provider = serializers.CharField(required=False)
    outputs = serializers.DictField(required=False)
    answer = serializers.JSONField(required=False)
    timings = serializers.DictField(required=False)
    batch_size = serializers.IntegerField(required=False)
    error = serializers.CharField(required=False)
    errors = serializers.DictField(required=False)
    created_at = serializers.DateTimeField()


class WebhookDeliverySerializer(CachedFieldsModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "attempt",
            "url",
            "status_code",
            "succeeded",
            "error",
            "response_excerpt",
            "duration_ms",
            "created_at",
        ]
        read_only_fields = fields
