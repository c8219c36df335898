"""The batch jobs API: send a file of rows to a model version, follow the job, download its results.

* ``POST /models/{owner}/{name}/versions/{label}/batch`` (multipart: ``file``, ``format`` = jsonl | csv | npz,
  by default from the file name, ``chunk_size``, ``include_outputs``): 202 with the batch job. Needs ``run`` on
  the model (404 when it may not be viewed, 403 when viewed but not run; a token needs the ``run`` scope).
* ``GET /batch-jobs/``, ``GET /batch-jobs/{uuid}/``: status, progress (0..1, from the rows done), rows total,
  done and failed, the provider ONNX Runtime really used, the download URL.
* ``GET /batch-jobs/{uuid}/results``: the results file, streamed; partial results while the job runs and after
  it failed (``X-Rows-Done`` says how many rows it holds, ``X-Results-Complete`` whether that is all of them).

A batch job is seen by its creator and the admins of the organization it counted against (as any job).
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import TokenScope
from apps.core.api.serializers import CachedFieldsModelSerializer, absolute_url
from apps.core.api.views import RestrictedViewSetMixin, bound_organization_id
from apps.core.jobs import Job, JobStatus
from apps.inference.batch import (
    BATCH_KIND,
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    max_batch_file_bytes,
    open_results,
    start_batch_inference,
)
from apps.inference.models import BatchFormat
from apps.inference.predictions import NotRunnable, acting_organization
from apps.marketplace.api.mixins import AnyContentMixin, ModelLookupMixin

UUID_REGEX = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
# Room for the multipart envelope and the small fields around the file.
MULTIPART_SLACK_BYTES = 64 * 1024


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class BatchRequestSerializer(serializers.Serializer):
    """The multipart form of a batch request."""

    file = serializers.FileField(allow_empty_file=True, help_text="The rows: a JSONL, CSV or NPZ file.")
    format = serializers.ChoiceField(
        choices=BatchFormat.choices, required=False, help_text="jsonl, csv or npz; by default from the file name."
    )
    chunk_size = serializers.IntegerField(
        min_value=1,
        max_value=MAX_CHUNK_SIZE,
        default=DEFAULT_CHUNK_SIZE,
        help_text="Rows run together (merged into one model run when the model has a batch axis).",
    )
    # allow_null: an absent form field is None (then true), not False as DRF makes absent booleans of forms.
    include_outputs = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="JSONL results: each row's tensor outputs beside its readable answer (default true).",
    )


class BatchJobSerializer(CachedFieldsModelSerializer):
    """A batch job: its state, its rows, where its results are."""

    job = serializers.UUIDField(source="uuid", read_only=True)
    # A plain string, as predictions have it: a second component with Job's status enum makes drf-spectacular
    # rename that enum with a hash.
    status = serializers.CharField(read_only=True, help_text="queued, running, succeeded, failed or cancelled")
    url = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    version = serializers.CharField(source="batch.version.label", read_only=True)
    deployment = serializers.SerializerMethodField()
    input_format = serializers.CharField(source="batch.input_format", read_only=True)
    input_name = serializers.CharField(source="batch.input_name", read_only=True)
    rows_total = serializers.IntegerField(source="batch.rows_total", read_only=True)
    rows_done = serializers.IntegerField(source="batch.rows_done", read_only=True)
    rows_failed = serializers.IntegerField(source="batch.rows_failed", read_only=True)
    chunk_size = serializers.IntegerField(source="batch.chunk_size", read_only=True)
    provider = serializers.CharField(source="batch.provider", read_only=True)
    download_url = serializers.SerializerMethodField()
    results_complete = serializers.SerializerMethodField()
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Job
        fields = [
            "job",
            "url",
            "status",
            "progress",
            "progress_message",
            "model",
            "version",
            "deployment",
            "organization",
            "input_format",
            "input_name",
            "rows_total",
            "rows_done",
            "rows_failed",
            "chunk_size",
            "provider",
            "download_url",
            "results_complete",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, job: Job) -> str:
        return absolute_url(self.context.get("request"), reverse("api:batch-job-detail", kwargs={"uuid": job.uuid}))

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, job: Job) -> str:
        return absolute_url(self.context.get("request"), reverse("api:batch-job-results", kwargs={"uuid": job.uuid}))

    @extend_schema_field(serializers.FloatField(min_value=0, max_value=1))
    def get_progress(self, job: Job) -> float:
        if job.status == JobStatus.SUCCEEDED:
            return 1.0
        batch = job.batch
        return round(batch.rows_done / batch.rows_total, 6) if batch.rows_total else 0.0

    @extend_schema_field(serializers.CharField())
    def get_model(self, job: Job) -> str:
        return str(job.batch.version.model)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_deployment(self, job: Job) -> str | None:
        return str(job.batch.deployment) if job.batch.deployment_id else None

    @extend_schema_field(serializers.BooleanField())
    def get_results_complete(self, job: Job) -> bool:
        return bool(job.batch.output_file)


def _upload_too_large(request) -> int | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    return length if length > max_batch_file_bytes() + MULTIPART_SLACK_BYTES else None


class VersionBatchView(ModelLookupMixin, APIView):
    """``POST /models/{owner}/{name}/versions/{label}/batch``: a batch job over the rows of an uploaded file."""

    parser_classes = [MultiPartParser, FormParser]
    scope_for_action = {"run": TokenScope.RUN}

    def get_restrict_action(self) -> str:
        return "run"

    @extend_schema(
        summary="Run a model version over a file of rows (a batch job)",
        request={"multipart/form-data": BatchRequestSerializer},
        responses={
            202: BatchJobSerializer,
            400: OpenApiResponse(description="The file or a field is wrong: each error names the field and why."),
            403: OpenApiResponse(description="You may view the model but not run it."),
            404: OpenApiResponse(description="No such model or version, or you may not view it."),
            409: OpenApiResponse(description="The version has not passed validation."),
        },
        tags=["inference"],
    )
    def post(self, request, owner: str, name: str, label: str) -> Response:
        self.require("run")
        version = self.version_by_label(label)
        self.refuse_yanked(version, pinned=True)
        too_large = _upload_too_large(request)
        if too_large is not None:  # refused before reading the body
            raise exceptions.ValidationError(
                {"file": [f"The request is {too_large} bytes, over the batch file limit of {max_batch_file_bytes()}."]}
            )
        form = BatchRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        organization = acting_organization(request.user, bound_organization_id(request), version.model.organization)
        try:
            job = start_batch_inference(
                version=version,
                uploaded=data["file"],
                input_format=data.get("format"),
                chunk_size=data["chunk_size"],
                include_outputs=data.get("include_outputs") is not False,
                user=request.user,
                organization=organization,
            )
        except NotRunnable as exc:
            raise Conflict(str(exc)) from exc
        job = Job.objects.select_related(
            "organization", "batch__version__model__organization", "batch__deployment__organization"
        ).get(pk=job.pk)
        body = BatchJobSerializer(job, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class BatchJobViewSet(
    AnyContentMixin, RestrictedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Batch jobs you may see: yours, and those counted against organizations you administer."""

    queryset = Job.objects.filter(kind=BATCH_KIND).select_related(
        "organization", "batch__version__model__organization", "batch__deployment__organization"
    )
    serializer_class = BatchJobSerializer
    requires_signed_in = True
    lookup_field = "uuid"
    lookup_value_regex = UUID_REGEX
    filterset_fields = ["status"]
    ordering = ["-created_at"]

    @extend_schema(summary="Batch jobs you may see", tags=["inference"])
    def list(self, request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One batch job: status, progress, rows done and failed, provider", tags=["inference"])
    def retrieve(self, request, *args, **kwargs) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="A batch job's results (partial while it runs or after it failed)",
        tags=["inference"],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def results(self, request, *args: Any, **kwargs: Any) -> FileResponse:
        job = self.get_object()
        found = open_results(job, job.batch)
        response = FileResponse(
            found.file, as_attachment=True, filename=found.filename, content_type=found.content_type
        )
        response["X-Rows-Done"] = str(found.rows)
        response["X-Results-Complete"] = "true" if found.complete else "false"
        return response
