"""The pipelines API: an organization's pipelines (list, create, read, change, delete), running one (synchronous
with a 202 fallback, or ``?async=1``), and one run's outcome.

Who may do what (``Pipeline`` follows the deployments' roles): the organization's viewers see its pipelines,
members create, change and run them, admins delete them; one who may not view a pipeline gets 404, one who may
view but not act 403. Saving also needs the ``run`` right on every version a step uses. A run is seen, like any
job, by its creator and the organization's admins (``/pipeline-runs/{uuid}/``).
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import TokenScope
from apps.core import lookup
from apps.core.api.serializers import CachedFieldsModelSerializer, absolute_url
from apps.core.api.views import OrganizationNestedMixin, RestrictedViewSetMixin, api_refusals, bound_organization_id
from apps.core.jobs import Job, JobStatus
from apps.core.lookup import CREATE_IN
from apps.inference import pipelines
from apps.inference.api.views import NPZ_TYPES, Conflict, PredictThrottle, RunFailed, _truthy
from apps.inference.completion import wait_finished
from apps.inference.models import Pipeline
from apps.inference.predictions import sync_timeout
from apps.organizations.api.views import ORG_SLUG

# --- serializers --------------------------------------------------------------------------------------------------


class PipelineStepSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField(help_text="“owner/name@label” (an alias may stand for the label), or a uuid.")
    inputs = serializers.DictField(
        child=serializers.CharField(), help_text="Model input -> “input.<name>” or “<earlier step>.<output>”."
    )


class PipelineWriteSerializer(serializers.Serializer):
    """What a pipeline is saved with; the steps and outputs are checked by ``pipelines.check_pipeline``, which
    names each wrong field (``steps[1].inputs.x``)."""

    slug = serializers.CharField(max_length=50, required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    steps = serializers.JSONField(required=False, help_text="A list of steps: {name, version, inputs}.")
    outputs = serializers.JSONField(
        required=False, help_text="Output name -> “<step>.<output>” (default: every output of the last step)."
    )


class PipelineSerializer(CachedFieldsModelSerializer):
    """A pipeline: its steps with the versions they run, what it takes and what it answers."""

    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="handle", read_only=True, allow_null=True)
    steps = serializers.SerializerMethodField()
    inputs = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    run_url = serializers.SerializerMethodField()

    class Meta:
        model = Pipeline
        fields = [
            "uuid", "url", "run_url", "organization", "slug", "description", "steps", "inputs", "outputs",
            "created_by", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def _versions(self) -> dict:
        return self.context.get("versions") or {}

    def get_steps(self, pipeline: Pipeline) -> list[dict[str, Any]]:
        versions = self._versions()
        viewable = self.context.get("viewable_versions")
        shown = []
        for step in pipeline.steps:
            version = versions.get(step.get("version", ""))
            if version is not None and viewable is not None and version.pk not in viewable:
                # A version of another organization the author was granted: not named to the others.
                shown.append(
                    {"name": step.get("name"), "version": None, "version_uuid": None, "inputs": step.get("inputs", {})}
                )
                continue
            shown.append(
                {
                    "name": step.get("name"),
                    "version": pipelines.reference_of(version) if version else None,
                    "version_uuid": step.get("version"),
                    "inputs": step.get("inputs", {}),
                }
            )
        return shown

    def get_inputs(self, pipeline: Pipeline) -> list[dict[str, Any]]:
        return [
            {"name": item.name, "elem_type": item.elem_type, "shape": item.shape}
            for item in pipelines.pipeline_inputs(pipeline, self._versions())
        ]

    def get_url(self, pipeline: Pipeline) -> str:
        kwargs = {"org_slug": pipeline.organization.slug, "slug": pipeline.slug}
        return absolute_url(self.context.get("request"), reverse("api:pipeline-detail", kwargs=kwargs))

    def get_run_url(self, pipeline: Pipeline) -> str:
        kwargs = {"org_slug": pipeline.organization.slug, "slug": pipeline.slug}
        return absolute_url(self.context.get("request"), reverse("api:pipeline-run", kwargs=kwargs))


class PipelineRunRequestSerializer(serializers.Serializer):
    """``{"inputs": {"<pipeline input>": <tensor>}, "encoding": "json", "timeout": 5}``, or an ``.npz`` body."""

    inputs = serializers.JSONField(help_text="Tensors by pipeline input name (JSON lists, {b64,dtype,shape} or {npy}).")
    encoding = serializers.ChoiceField(choices=["json", "b64", "npy"], required=False)
    timeout = serializers.FloatField(
        required=False, help_text="Seconds to wait before answering 202 with the run's URL."
    )


class PipelineRunSerializer(serializers.Serializer):
    """A run: status, outputs, and each step's version, provider and milliseconds."""

    job = serializers.UUIDField()
    url = serializers.URLField()
    status = serializers.CharField()
    pipeline = serializers.CharField()
    outputs = serializers.DictField(required=False)
    steps = serializers.ListField(child=serializers.DictField(), required=False)
    total_ms = serializers.FloatField(required=False)
    error = serializers.CharField(required=False)
    errors = serializers.DictField(required=False)
    created_at = serializers.DateTimeField()


# --- views --------------------------------------------------------------------------------------------------------


@extend_schema(tags=["inference"], parameters=[ORG_SLUG])
class PipelineViewSet(
    OrganizationNestedMixin,
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """``/orgs/{org}/pipelines/`` and ``/orgs/{org}/pipelines/{slug}/``."""

    queryset = Pipeline.objects.select_related("organization", "created_by")
    serializer_class = PipelineSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "slug"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    search_fields = ["slug", "description"]
    ordering = ["slug"]

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["versions"] = getattr(self, "_versions_in_view", {})
        context["viewable_versions"] = getattr(self, "_viewable_in_view", None)
        return context

    def _serialized(self, items: list[Pipeline], *, many: bool) -> Any:
        self._versions_in_view = pipelines.versions_of(items)
        self._viewable_in_view = pipelines.viewable_versions(
            self._versions_in_view.values(),
            actor=self.request.user,
            bound_organization=bound_organization_id(self.request),
        )
        return self.get_serializer(items if many else items[0], many=many).data

    @extend_schema(summary="The organization's pipelines", tags=["inference"])
    def list(self, request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._serialized(list(page), many=True))

    @extend_schema(summary="A pipeline: steps, inputs, outputs", tags=["inference"])
    def retrieve(self, request, *args, **kwargs) -> Response:
        return Response(self._serialized([self.get_object()], many=False))

    @extend_schema(
        summary="Save a new pipeline (members), validated against its versions' signatures",
        request=PipelineWriteSerializer,
        responses={201: PipelineSerializer},
        tags=["inference"],
    )
    def create(self, request, *args, **kwargs) -> Response:
        self.require_organization_action(CREATE_IN)
        body = PipelineWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if not data.get("slug"):
            raise exceptions.ValidationError({"slug": ["Required: the pipeline's slug."]}, code="required")
        if "steps" not in data:
            raise exceptions.ValidationError({"steps": ["Required: a list of steps."]}, code="required")
        pipeline = pipelines.save_pipeline(
            organization=self.organization,
            slug=data["slug"],
            steps=data["steps"],
            outputs=data.get("outputs"),
            description=data.get("description", ""),
            actor=request.user,
            bound_organization=bound_organization_id(request),
        )
        fresh = self.get_queryset().get(pk=pipeline.pk)
        return Response(self._serialized([fresh], many=False), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a pipeline (members); it is validated again as a whole",
        request=PipelineWriteSerializer,
        responses={200: PipelineSerializer},
        tags=["inference"],
    )
    def partial_update(self, request, *args, **kwargs) -> Response:
        pipeline = self.get_object()  # 403 unless the caller may change it (RestrictedViewSetMixin)
        body = PipelineWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "slug" in data and data["slug"] != pipeline.slug:
            raise exceptions.ValidationError({"slug": ["A pipeline's slug cannot change."]}, code="immutable")
        steps_given = "steps" in request.data
        with self.locked_for(pipeline, "change") as locked:
            pipelines.save_pipeline(
                organization=self.organization,
                slug=locked.slug,
                steps=data["steps"] if steps_given else locked.steps,
                # New steps without outputs take the default outputs again (the old ones may name steps now gone).
                outputs=data.get("outputs") if "outputs" in request.data else (None if steps_given else locked.outputs),
                description=data.get("description"),
                actor=request.user,
                pipeline=locked,
                bound_organization=bound_organization_id(request),
            )
        return Response(self._serialized([self.get_queryset().get(pk=pipeline.pk)], many=False))

    @extend_schema(summary="Delete a pipeline (admins)", tags=["inference"])
    def destroy(self, request, *args, **kwargs) -> Response:
        pipeline = self.get_object()  # 403 unless the caller may delete it
        self.perform_destroy(pipeline)  # re-checked with the row locked
        return Response(status=status.HTTP_204_NO_CONTENT)

    def delete_object(self, instance: Pipeline) -> None:
        pipelines.delete_pipeline(pipeline=instance, actor=self.request.user)

    def get_restrict_action(self) -> str | None:
        if getattr(self, "action", None) == "create":
            return "create"
        return super().get_restrict_action()


def run_url(request, job: Job) -> str:
    return request.build_absolute_uri(reverse("api:pipeline-run-detail", kwargs={"uuid": job.uuid}))


class PipelineRunView(OrganizationNestedMixin, APIView):
    """``POST /orgs/{org}/pipelines/{slug}/run``: run the pipeline; the answer, or 202 and the run's URL."""

    throttle_classes = [PredictThrottle]
    scope_for_action = {"run": TokenScope.RUN}

    def get_restrict_action(self) -> str:
        return "run"

    def _pipeline(self, action: str) -> Pipeline:
        """The pipeline through core's lookup path: 404 unless the caller may view it, 403 unless ``action``."""
        with api_refusals():
            return lookup.find_allowed(
                Pipeline.objects.select_related("organization"),
                self.request.user,
                action,
                within_organization=bound_organization_id(self.request),
                organization=self.organization,
                slug=self.kwargs["slug"],
            )

    @extend_schema(
        summary="Run a pipeline",
        request=PipelineRunRequestSerializer,
        responses={
            200: PipelineRunSerializer,
            202: OpenApiResponse(description="Still running (or asked for asynchronously): poll the run's URL."),
            400: OpenApiResponse(description="The inputs are wrong: each error names the input and the reason."),
            403: OpenApiResponse(description="You may view the pipeline (or a step's model) but not run it."),
            404: OpenApiResponse(
                description="No such pipeline, or you may not view it, or a step runs a model you may not see."
            ),
            409: OpenApiResponse(description="A step's version can no longer run."),
            422: OpenApiResponse(description="A step failed: the error names it."),
        },
        parameters=[
            OpenApiParameter("async", bool, description="Answer 202 at once with the run's URL."),
            OpenApiParameter("timeout", float, description="Seconds to wait before answering 202."),
        ],
        tags=["inference"],
    )
    def post(self, request, org_slug: str, slug: str) -> Response:
        pipeline = self._pipeline("run")
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        body: dict[str, Any] = {}
        caller = {"actor": request.user, "bound_organization": bound_organization_id(request)}
        try:
            if content_type in NPZ_TYPES:
                run_request = pipelines.read_run_request(
                    pipeline, npz=request.body, encoding=request.query_params.get("encoding", "json"), **caller
                )
            else:
                body = request.data if isinstance(request.data, dict) else {}
                run_request = pipelines.read_run_request(pipeline, request.data, **caller)
            wants_async = _truthy(request.query_params.get("async", "")) or "respond-async" in request.headers.get(
                "Prefer", ""
            )
            timeout = sync_timeout(body.get("timeout", request.query_params.get("timeout")))
            job = pipelines.start_pipeline_run(
                pipeline=pipeline,
                request=run_request,
                user=request.user,
                bound_organization=caller["bound_organization"],
            )
        except pipelines.StepNotAllowed as exc:
            if exc.visible:
                raise exceptions.PermissionDenied(str(exc), code="step_not_allowed") from exc
            raise exceptions.NotFound(str(exc), code="step_not_found") from exc
        except pipelines.PipelineNotRunnable as exc:
            raise Conflict(str(exc)) from exc
        if wants_async:
            return self.accepted(job)
        waited = wait_finished(job, timeout)
        if waited is None:
            return self.accepted(job)
        outcome, payload = waited
        if "result" not in outcome and "error" not in outcome:
            job.refresh_from_db()
        answer = pipelines.answer_of_run(job, outcome, payload)
        answer["url"] = run_url(request, job)
        pipelines.hide_unviewable_steps(answer, actor=request.user, bound_organization=bound_organization_id(request))
        if answer["status"] == JobStatus.FAILED:
            raise RunFailed(answer.get("error") or "The pipeline failed.")
        return Response(answer)

    def accepted(self, job: Job) -> Response:
        url = run_url(self.request, job)
        return Response(
            {"job": str(job.uuid), "status": job.status, "url": url},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": url},
        )


class PipelineRunDetailView(APIView):
    """``GET /pipeline-runs/{uuid}/``: a run's status, outputs and per-step timings (its creator and the
    organization's admins)."""

    def get_restrict_action(self) -> str:
        return "view"

    @extend_schema(
        summary="A pipeline run: status, outputs, per-step timings", responses=PipelineRunSerializer, tags=["inference"]
    )
    def get(self, request, uuid: str) -> Response:
        visible = Job.objects.restrict(request.user, "view", within_organization=bound_organization_id(request))
        job = get_object_or_404(visible.select_related("organization"), kind=pipelines.PIPELINE_KIND, uuid=uuid)
        answer = pipelines.answer_of_run(job)
        answer["url"] = run_url(request, job)
        pipelines.hide_unviewable_steps(answer, actor=request.user, bound_organization=bound_organization_id(request))
        return Response(answer)
