"""Jobs in the API: ``/api/v1/jobs/`` (list, start), ``/jobs/{uuid}/`` (status), ``/jobs/{uuid}/download/`` and
``/jobs/{uuid}/cancel/``.

Who sees what (docs/api/jobs.md): a job is visible to its creator (while a member of its organization, or for good
when it is their own, a prediction) and to its organization's admins and owners (``Job.objects.restrict(user,
"view")``); anyone else gets 404. The same people may cancel it (``"cancel"``). Starting a job needs the restrict()
action on the organization and the token scope its kind asks for (``audit.export``: ``audit``, that is admins, and
the ``admin`` scope); a token bound to an organization sees and starts
jobs of that organization only. An organization that requires MFA refuses its jobs to a session caller without it.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import django_filters
from django.db import transaction
from django.http import FileResponse
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from apps.core.access import TokenScope, organization_model
from apps.core.api.permissions import require_scope
from apps.core.api.serializers import CachedFieldsModelSerializer, absolute_url
from apps.core.api.views import RestrictedViewSetMixin, api_refusals, bound_organization_id
from apps.core.gates import gate_refusal
from apps.core.job_services import cancel_job, ensure_sent, job_kinds, job_task_for, start_job
from apps.core.jobs import Job, JobStatus
from apps.core.lookup import require_organization_action

UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def user_startable_kinds() -> list[str]:
    return sorted(kind for kind, task in job_kinds().items() if task.user_startable)


# --- serializers ------------------------------------------------------------------------------------------------


class JobSerializer(CachedFieldsModelSerializer):
    """A job's state as its creator and the organization's admins see it."""

    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    creator = serializers.SlugRelatedField(slug_field="handle", read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "uuid",
            "url",
            "kind",
            "organization",
            "creator",
            "params",
            "status",
            "progress",
            "progress_message",
            "result",
            "download_url",
            "error",
            "traceback",
            "attempts",
            "max_attempts",
            "queue",
            "time_limit",
            "heartbeat_at",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, job: Job) -> str:
        return absolute_url(self.context.get("request"), reverse("api:job-detail", kwargs={"uuid": job.uuid}))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, job: Job) -> str | None:
        if job.status != JobStatus.SUCCEEDED or not job.result_file:
            return None
        return absolute_url(self.context.get("request"), reverse("api:job-download", kwargs={"uuid": job.uuid}))


class JobCreateSerializer(serializers.Serializer):
    """``{"kind": "audit.export", "organization": "<slug>", "params": {...}}``."""

    kind = serializers.CharField(max_length=100, help_text="The kind of job; people may start “audit.export”.")
    organization = serializers.SlugField(max_length=39, help_text="The slug of the organization the job works for.")
    params = serializers.JSONField(required=False, default=dict, help_text="The kind's parameters (a JSON object).")


# --- filters ------------------------------------------------------------------------------------------------------


class JobFilterSet(django_filters.FilterSet):
    """``?status=running&kind=audit.export&organization=acme`` (shared by the API and the jobs pages)."""

    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices)
    kind = django_filters.CharFilter(field_name="kind")
    organization = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")

    class Meta:
        model = Job
        fields = ["status", "kind", "organization"]


# --- views ----------------------------------------------------------------------------------------------------------


class JobNotFinished(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The job has not finished yet."
    default_code = "job_not_finished"


class JobFinished(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The job has already finished."
    default_code = "job_finished"


def _refuse_without_mfa(request, organization) -> None:
    """A session caller of an organization that requires MFA, without it: 403 ``mfa_required`` (as its org
    routes answer; API tokens are not affected): the organization's gates (apps/core/gates.py) decide."""
    refusal = gate_refusal(request, organization)
    if refusal is not None:
        message, code = refusal
        raise exceptions.PermissionDenied(message, code=code)


def _invalid(field: str, message: str, code: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [ErrorDetail(message, code=code)]})


@extend_schema_view(
    list=extend_schema(summary="Jobs you may see", tags=["jobs"]),
    retrieve=extend_schema(summary="One job: status, progress, result or error", tags=["jobs"]),
    create=extend_schema(
        summary="Start a job",
        description="Kinds people may start: `audit.export` (organization admins; token scope `admin`), "
        'params `{"format": "csv" | "jsonl", "filters": {...}}` with the audit trail\'s filters.',
        request=JobCreateSerializer,
        responses={
            201: JobSerializer,
            503: OpenApiResponse(
                description="The job queue does not answer (`code: queue_unavailable`, `Retry-After`); the job was "
                "saved (`job`, `job_url`) and starts once the queue is back."
            ),
        },
        tags=["jobs"],
    ),
)
class JobViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Background jobs: list those you may see, start one, follow its progress, download its file."""

    queryset = Job.objects.select_related("organization", "creator")
    serializer_class = JobSerializer
    filterset_class = JobFilterSet
    lookup_field = "uuid"
    lookup_value_regex = UUID_PATTERN
    ordering_fields = ["created_at", "finished_at", "status", "kind"]
    ordering = ["-created_at"]
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    # Each kind asks for its own scope as well (``JobTask.required_scope``), checked in ``create``.
    scope_for_action = {"create": TokenScope.WRITE, "cancel": TokenScope.WRITE}

    def perform_content_negotiation(self, request, force: bool = False):
        # A download answers a file whatever the client says it accepts (``Accept: text/csv``); errors are JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "download")

    def get_serializer_class(self):
        return JobCreateSerializer if self.action == "create" else JobSerializer

    def get_object(self):
        job = super().get_object()
        _refuse_without_mfa(self.request, job.organization)
        return job

    def create(self, request, *args, **kwargs):
        incoming = JobCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        task = job_task_for(data["kind"])
        if task is None or not task.user_startable:
            startable = ", ".join(user_startable_kinds())
            message = f"“{data['kind']}” is not a kind of job you can start; use one of: {startable}."
            raise _invalid("kind", message, "invalid_choice")
        organization = self._organization_for_job(data["organization"], task)
        try:
            params = task.clean_params(data["params"], organization=organization, user=request.user)
        except exceptions.ValidationError as exc:
            raise exceptions.ValidationError({"params": exc.detail}) from exc
        job = start_job(kind=task.kind, organization=organization, creator=request.user, params=params)
        ensure_sent(job)  # the queue did not answer: 503 with Retry-After, naming the job (it starts later)
        body = JobSerializer(job, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})

    def _organization_for_job(self, slug: str, task):
        """The organization a job of ``task``'s kind starts in, through core's lookup path: one the caller may view
        (else a 400 on the field), its gates (MFA), then the kind's restrict() action on it (``audit`` for an audit
        export) and the kind's token scope."""
        request = self.request
        bound = bound_organization_id(request)
        visible = organization_model().objects.restrict(request.user, "view", within_organization=bound)
        organization = visible.filter(slug=slug.lower()).first()
        if organization is None:
            raise _invalid("organization", f"There is no organization “{slug}” that you can see.", "does_not_exist")
        _refuse_without_mfa(request, organization)
        doing = f"start “{task.kind}” jobs"
        with api_refusals():
            require_organization_action(
                request.user, organization, task.organization_action, within_organization=bound, doing=doing
            )
        require_scope(request, task.required_scope, doing=f"starting “{task.kind}” jobs")
        return organization

    @extend_schema(
        summary="Download the job's result file",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file."),
            404: OpenApiResponse(description="No such job that you may see, or the job made no file."),
            409: OpenApiResponse(description="The job has not succeeded (yet)."),
        },
        tags=["jobs"],
    )
    @action(detail=True, methods=["get"], restrict_action="view", filter_backends=[], pagination_class=None)
    def download(self, request, *args, **kwargs):
        job = self.get_object()
        if job.status != JobStatus.SUCCEEDED:
            raise JobNotFinished(f"The job is {job.status}: only a job that succeeded has a file to download.")
        if not job.result_file:
            raise exceptions.NotFound("This job made no file to download.", code="no_file")
        try:
            handle = job.result_file.open("rb")
        except FileNotFoundError as exc:
            raise exceptions.NotFound("The job's file is no longer available.", code="file_gone") from exc
        content_type = (job.result or {}).get("content_type") or "application/octet-stream"
        return FileResponse(
            handle, as_attachment=True, filename=PurePosixPath(job.result_file.name).name, content_type=content_type
        )

    @extend_schema(
        summary="Cancel a queued or running job",
        description="A queued job will not start; a running one stops at its next progress report. Its creator "
        "and the organization's admins may cancel it (token scope `write`).",
        request=None,
        responses={
            200: JobSerializer,
            403: OpenApiResponse(description="You may see the job but not cancel it."),
            404: OpenApiResponse(description="No such job that you may see."),
            409: OpenApiResponse(description="The job has already finished (`code: job_finished`)."),
        },
        tags=["jobs"],
    )
    @action(detail=True, methods=["post"], restrict_action="cancel", filter_backends=[], pagination_class=None)
    def cancel(self, request, *args, **kwargs):
        job = self.get_object()
        with transaction.atomic():
            locked = self.lock_restricted(job, "cancel")
            cancelled = cancel_job(job=locked, actor=request.user)
        if not cancelled:
            raise JobFinished(f"The job has already {locked.status}: only a queued or running job can be cancelled.")
        return Response(JobSerializer(locked, context=self.get_serializer_context()).data)
