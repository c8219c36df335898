"""A version's performance card in the API: ``GET /models/{owner}/{name}/versions/{label}/performance`` answers the
newest card (404 when none was measured yet); ``POST`` measures it again (members of the model's organization:
the ``change`` right on the model) and answers 202 with the job's URL.

Who may read a card: whoever may view the model (a public model's card is public).
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.inference import performance
from apps.inference.api.views import Conflict
from apps.marketplace.api.mixins import ModelLookupMixin
from apps.marketplace.models import ValidationStatus


class PerformanceCardSerializer(serializers.Serializer):
    """The newest card of a version."""

    version = serializers.CharField()
    provider = serializers.CharField(help_text="What ONNX Runtime really used (session.get_providers()[0]).")
    device = serializers.CharField(help_text="The CPU model or the GPU's name.")
    latency_p50_ms = serializers.FloatField(help_text="At batch 1.")
    latency_p95_ms = serializers.FloatField(help_text="At batch 1.")
    best_batch_size = serializers.IntegerField()
    best_batch_p50_ms = serializers.FloatField(allow_null=True)
    best_batch_p95_ms = serializers.FloatField(allow_null=True)
    throughput = serializers.FloatField(help_text="Items per second at the best batch size.")
    memory_mb = serializers.FloatField(help_text="Resident memory loading the session added, in MiB.")
    details = serializers.DictField(help_text="Every batch size measured, the sequence length used, the worker.")
    measured_at = serializers.DateTimeField()
    job = serializers.UUIDField(allow_null=True)


class VersionPerformanceView(ModelLookupMixin, APIView):
    """``/models/{owner}/{name}/versions/{label}/performance``: GET the card, POST to measure again."""

    def get_restrict_action(self) -> str:
        return "view" if self.request.method == "GET" else "change"

    @extend_schema(
        summary="A version's performance card (the newest)",
        responses={200: PerformanceCardSerializer, 404: OpenApiResponse(description="Not measured yet.")},
        tags=["inference"],
    )
    def get(self, request, owner: str, name: str, label: str) -> Response:
        version = self.version_by_label(label)
        self.refuse_yanked(version, pinned=True)
        card = performance.latest_card(version)
        if card is None:
            raise exceptions.NotFound(
                f"Version “{version.label}” of {self.catalog_model} has no performance card yet; it is measured when "
                "published, or ask for one with POST."
            )
        card.version = version
        return Response(PerformanceCardSerializer(performance.card_summary(card)).data)

    @extend_schema(
        summary="Measure a version again (members)",
        request=None,
        responses={
            202: OpenApiResponse(description="Queued: the job's URL; the card appears when it finishes."),
            409: OpenApiResponse(description="The version has not passed validation."),
        },
        tags=["inference"],
    )
    def post(self, request, owner: str, name: str, label: str) -> Response:
        self.require("change")
        version = self.version_by_label(label)
        self.refuse_yanked(version, pinned=True)
        if version.validation_status != ValidationStatus.PASSED or not (version.signature or {}).get("inputs"):
            raise Conflict(
                f"Version “{version.label}” of {self.catalog_model} has not passed validation, so there is nothing to "
                "measure yet."
            )
        job = performance.start_performance_card(version=version, actor=request.user)
        url = request.build_absolute_uri(reverse("api:job-detail", kwargs={"uuid": job.uuid}))
        return Response(
            {"job": str(job.uuid), "status": job.status, "url": url},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": url},
        )
