"""The inference API: predictions on a model version or a deployment (synchronous or not), the predictions
you made, deployments (CRUD, revisions, rollback) and the organization's webhook secret.

Who may do what: a prediction on a version needs ``run`` on the model (404 when it may not be viewed, 403 when
viewed but not run; a token needs the ``run`` scope); on a deployment, ``run`` on the deployment. A prediction
job is seen by its creator and the admins of the organization it counted against.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import TokenScope
from apps.analytics.quotas import check_prediction, counted_in, prediction_windows, refund_prediction
from apps.core import lookup
from apps.core.api.throttling import UserRateThrottle
from apps.core.api.views import (
    OrganizationNestedMixin,
    RestrictedViewSetMixin,
    api_refusals,
    bound_organization_id,
)
from apps.core.job_services import QueueUnavailable, broker_errors, ensure_sent
from apps.core.jobs import Job, JobStatus
from apps.core.lookup import ADMINISTER, CREATE_IN
from apps.inference import services
from apps.inference.api.serializers import (
    DeploymentRevisionSerializer,
    DeploymentSerializer,
    DeploymentWriteSerializer,
    PredictionRequestSerializer,
    PredictionSerializer,
    RollbackSerializer,
    WebhookDeliverySerializer,
)
from apps.inference.completion import wait_finished
from apps.inference.models import Deployment, InferenceJob
from apps.inference.predictions import (
    BATCHED_PREDICT_KIND,
    PREDICT_KIND,
    NotRunnable,
    NoWorker,
    acquire_slot,
    answer_of,
    prediction_organization,
    read_json_request,
    read_npz_request,
    release_slot,
    require_runnable,
    slot_expiry,
    slot_key,
    start_prediction,
    sync_timeout,
    viewable_models,
)
from apps.inference.routing import compute_device
from apps.inference.webhooks import check_webhook_url, rotate_secret, secret_of
from apps.marketplace.api.mixins import ModelLookupMixin
from apps.marketplace.models import Model, ModelVersion, VersionStatus
from apps.organizations.api.views import ORG_SLUG

NPZ_TYPES = ("application/x-npz", "application/octet-stream", "application/zip")
PREDICTION_KINDS = (PREDICT_KIND, BATCHED_PREDICT_KIND)


class PredictThrottle(UserRateThrottle):
    """Predictions have their own, higher rate (``API_THROTTLE_PREDICT``) than the rest of the API."""

    scope = "predict"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class Unavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "no_worker"


class Throttled(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "deployment_busy"


class RunFailed(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "prediction_failed"


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def submit_prediction(
    request: Any,
    version: ModelVersion,
    prediction: Any,
    *,
    deployment: Deployment | None = None,
    timeout: float,
    wait: bool = True,
    webhook_url: str = "",
) -> tuple[Job, tuple[dict, bytes] | None]:
    """Start a prediction for the API caller and, when ``wait``, wait up to ``timeout`` seconds for it to finish.

    The run belongs to the deployment's organization, or for a direct run of a version to the organization the
    caller acts for (``prediction_organization``); a synchronous request on a deployment holds one of
    its ``concurrency`` slots while it waits (429 when none is free); 503 when no worker can take it. Returns the
    job and ``(outcome, payload)`` once it finished (the job and its ``inference`` re-read when the outcome did not
    carry the result), or ``None`` when not waiting or not finished in time. The REST predict views and the KServe
    v2 API (``apps/inference/api/kserve.py``) both run predictions through here.
    """
    organization = prediction_organization(request.user, bound_organization_id(request), version, deployment)
    check_prediction(
        request,
        organization_id=getattr(organization, "pk", organization),
        device=compute_device(deployment.device if deployment else "auto"),
    )
    revision = services.current_revision(deployment) if deployment is not None else None
    slot = False
    if deployment is not None and wait:
        slot = acquire_slot(deployment)
        if not slot:
            refund_prediction(request)  # refused: not counted against the per-minute quota
            raise Throttled(
                f"The deployment {deployment} has {deployment.concurrency} requests in flight, its limit; retry."
            )
    try:
        try:
            job = start_prediction(
                version=version,
                request=prediction,
                user=request.user,
                organization=organization,
                deployment=deployment,
                revision=revision,
                device=deployment.device if deployment else "auto",
                provider=deployment.provider if deployment else "auto",
                webhook_url=webhook_url,
                waited=wait,
            )
        except NoWorker as exc:
            raise Unavailable(str(exc)) from exc
        ensure_sent(job)  # the queue did not answer: 503 with Retry-After naming the job, which starts later
        if not wait:
            return job, None
        try:
            waited = wait_finished(job, timeout)
        except broker_errors() as exc:  # Redis went away while we waited: the job stays and runs when it is back
            raise QueueUnavailable(f"{type(exc).__name__}: {exc}", job=job) from exc
    finally:
        if slot:
            release_slot(deployment)
    if waited is not None:
        outcome, _payload = waited
        if "result" not in outcome and outcome.get("status") in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            job.refresh_from_db()
            job.inference.refresh_from_db()
    return job, waited


def run_online(
    request: Any,
    version: ModelVersion,
    *,
    arrays: Any,
    raw: Any = None,
    outputs: list[str] | None = None,
    items: int = 1,
    deployment: Deployment | None = None,
    shows_model: bool = True,
    timeout: float,
    throttles: list[Any] | None = None,
) -> tuple[Any, Any, Any] | None:
    """Serve a synchronous prediction online (apps/inference/online/): no Job row, the request through Redis to a
    serving loop, this thread waiting for the answer. Returns ``(request, reply, revision)``, or None when it should
    take the durable path instead (no serving loop up for its queue, Redis not configured, this process out of
    waiting slots). A refusal of the inputs by the worker is a 400, a failed run 422, no answer 503 with
    ``Retry-After``. Every request answered or not is recorded once (``apps.analytics.usage``).

    ``throttles``: the route's rate-limit windows (``apps.core.api.throttling.Window``), counted in the round trip
    that admits the request (429 past one of them); ``online.admitted`` says whether that round trip ran."""
    import time as clock

    from apps.inference.online import gateway
    from apps.inference.routing import queue_for

    device = deployment.device if deployment else "auto"
    queue = queue_for(device)
    if not gateway.online_available(queue):
        return None
    organization = prediction_organization(request.user, bound_organization_id(request), version, deployment)
    organization_id = getattr(organization, "pk", organization)
    # The compute allowance now; the per-minute quotas in the round trip that sends the request (the admission).
    windows = prediction_windows(request, organization_id=organization_id, device=compute_device(device))
    revision = services.current_revision(deployment) if deployment is not None else None
    online = gateway.OnlineRequest(
        version_id=version.pk,
        queue=queue,
        deployment_id=deployment.pk if deployment is not None else None,
        timeout=timeout,
        arrays=arrays,
        raw=raw,
        outputs=outputs,
        max_batch=deployment.max_batch_size if deployment is not None else 1,
        delay_ms=deployment.max_delay_ms if deployment is not None else 0,
        provider=deployment.provider if deployment is not None else "auto",
        time_limit=float(deployment.timeout_seconds) if deployment is not None else 60.0,
        throttles=list(throttles or []),
        quota=windows,
    )
    if deployment is not None:
        online.slot = gateway.Slot(slot_key(deployment), deployment.concurrency, slot_expiry(deployment))
    started = clock.monotonic()
    reply, status_code, waited = None, 503, True
    try:
        reply = gateway.send_and_wait(online)
        status_code = 200 if reply.succeeded else (400 if reply.header.get("errors") else 422)
    except gateway.NoWaitingSlot:
        waited = False
        return None
    except gateway.RateLimited as exc:  # refused before its quotas: not counted there
        waited = False
        raise exceptions.Throttled(exc.wait) from None
    except gateway.QuotaFull as exc:
        waited = False
        raise windows.refusal(exc.index, exc.wait) from None
    except gateway.DeploymentFull:  # refused before it was counted in its quotas
        waited = False
        raise Throttled(
            f"The deployment {deployment} has {deployment.concurrency} requests in flight, its limit; retry."
        ) from None
    finally:
        if online.admitted:
            setattr(request, THROTTLES_COUNTED, True)
        if online.sent and windows is not None:  # counted in its quotas as it was sent
            counted_in(request, organization_id=organization_id, windows=windows)
        if online.slot is not None and online.sent and reply is None:
            gateway.release(online.slot)  # not answered: the loop gives back only what it answers
        if waited:
            _record_online(request, online, reply, status_code, started, organization_id, version, deployment,
                           revision, items, device)  # fmt: skip
    if not reply.succeeded:
        fields = reply.header.get("errors")
        if fields:
            raise exceptions.ValidationError(fields)
        error = reply.header.get("error") or "The prediction failed."
        if not shows_model and deployment is not None:
            error = error.replace(str(version.model), str(deployment))
        raise RunFailed(error)
    return online, reply, revision


def _record_online(
    request, online, reply, status_code, started, organization_id, version, deployment, revision, items, device
) -> None:
    """One usage record per online request, answered or not (its id is the request's: written once)."""
    import time as clock

    from apps.analytics import usage

    timings = (reply.header.get("timings") or {}) if reply is not None else {}
    # What a deployment's live status shows of it (apps.inference.views.live_status): it has no job row to show.
    shown: dict[str, Any] = {"online": True, "revision": revision.number if revision is not None else None}
    if reply is not None:
        shown.update(provider=reply.header.get("provider"), batch_size=reply.header.get("batch_size"))
    if status_code != 200:
        error = reply.header.get("error") if reply is not None else "No worker answered: 503."
        if error:
            shown["error"] = str(error)[:300]
    usage.record(
        "prediction",
        event_id=online.id,
        organization_id=organization_id,
        **usage.caller(request),
        model_id=version.model_id,
        version_id=version.pk,
        deployment_id=deployment.pk if deployment is not None else None,
        items=items,
        bytes=(reply.request_bytes + reply.reply_bytes) if reply is not None else 0,
        latency_ms=round((clock.monotonic() - started) * 1000, 3),
        outcome="ok" if status_code == 200 else ("refused" if status_code == 400 else "error"),
        status_code=status_code,
        compute_seconds=timings.get("run_ms", 0) / 1000 if reply is not None else None,
        device=compute_device(device),
        path=request.path,
        metadata=shown,
    )


def online_answer(
    version: ModelVersion,
    online: Any,
    reply: Any,
    revision: Any,
    *,
    deployment: Deployment | None,
    shows_model: bool,
    encoding: str,
) -> dict[str, Any]:
    """The REST answer of an online prediction: ``answer_of``'s fields, with the request's ``id`` for a job's."""
    from django.utils import timezone

    from apps.inference.runtime.codecs import encode_outputs

    outputs: dict[str, Any] = dict(reply.outputs)
    outputs.update(reply.header.get("other_outputs") or {})
    answer: dict[str, Any] = {
        "id": online.id,
        "status": JobStatus.SUCCEEDED,
        "model": str(version.model) if shows_model else None,
        "version": version.label if shows_model else None,
        "deployment": str(deployment) if deployment is not None else None,
        "revision": revision.number if revision is not None else None,
        "created_at": timezone.now(),
        "provider": reply.header.get("provider"),
        "outputs": encode_outputs(outputs, encoding=encoding),
        "timings": {**(reply.header.get("timings") or {}), "total_ms": round(reply.latency_ms, 3)},
        "batch_size": reply.header.get("batch_size"),
    }
    if reply.header.get("answer") is not None:
        answer["answer"] = reply.header["answer"]
    return answer


THROTTLES_COUNTED = "_gpux_throttles_counted"


class PredictMixin:
    """Read a prediction request, start the job, wait for it when synchronous, answer.

    Its rate limit (``PredictThrottle``) is counted once per request, where it costs nothing more: on the online path
    in the Redis round trip that admits the request to its queue (``run_online``), before the durable path starts a
    job, and for a request refused before either (bad inputs, a version not validated) when it is answered. So a
    request that is throttled is told so after its inputs were read, not before."""

    throttle_classes = [PredictThrottle]
    scope_for_action = {"run": TokenScope.RUN}

    def check_throttles(self, request) -> None:
        setattr(request, THROTTLES_COUNTED, False)  # counted later, once (see the class docstring)

    def count_throttles(self) -> None:
        """Count the request against its rate limits now, 429 past one, unless it was already counted."""
        if getattr(self.request, THROTTLES_COUNTED, True):
            return
        setattr(self.request, THROTTLES_COUNTED, True)
        super().check_throttles(self.request)

    def throttle_windows(self) -> list[Any]:
        """The windows the online path counts this request in; a throttle that cannot count there (no Redis cache)
        is counted now, as DRF counts it."""
        from apps.core.api.throttling import NotWindowed

        if getattr(self.request, THROTTLES_COUNTED, True):
            return []
        windows = []
        for throttle in self.get_throttles():
            try:
                window = throttle.window_of(self.request, self)
            except (AttributeError, NotWindowed):
                self.count_throttles()
                return []
            if window is not None:
                windows.append(window)
        return windows

    def finalize_response(self, request, response, *args, **kwargs):
        if not getattr(request, THROTTLES_COUNTED, True):  # answered before either path counted it: count it now
            with contextlib.suppress(exceptions.Throttled):
                self.count_throttles()
        return super().finalize_response(request, response, *args, **kwargs)

    def get_restrict_action(self) -> str:
        return "run"

    def prediction_url(self, job: Job) -> str:
        return self.request.build_absolute_uri(reverse("api:prediction-detail", kwargs={"uuid": job.uuid}))

    def read_request(self, version: ModelVersion):
        content_type = (self.request.content_type or "").split(";")[0].strip().lower()
        if content_type in NPZ_TYPES:
            data = self.request.body
            return read_npz_request(version, data, encoding=self.request.query_params.get("encoding", "json")), {}
        body = self.request.data
        return read_json_request(version, body), body if isinstance(body, dict) else {}

    def shows_model(self, deployment: Deployment | None) -> bool:
        """Whether answers may name the model behind ``deployment``: the caller may view it (always, for a version
        the caller named)."""
        if deployment is None:
            return True
        bound = bound_organization_id(self.request)
        return bool(viewable_models(self.request.user, bound, [deployment.model_id]))

    def run_prediction(
        self, version: ModelVersion, *, deployment: Deployment | None = None, shows_model: bool | None = None
    ) -> Response:
        if shows_model is None:
            shows_model = self.shows_model(deployment)
        try:
            require_runnable(version)
        except NotRunnable as exc:
            if not shows_model:
                message = f"The deployment {deployment} cannot serve now: its version has not passed validation."
                raise Conflict(message) from None
            raise Conflict(str(exc)) from exc
        prediction, body = self.read_request(version)
        webhook_url = check_webhook_url(body.get("webhook_url"))
        prefer = self.request.META.get("HTTP_PREFER", "")
        wants_async = _truthy(self.request.query_params.get("async", "")) or "respond-async" in prefer
        timeout = sync_timeout(body.get("timeout", self.request.query_params.get("timeout")))
        if not wants_async and not webhook_url:
            served = run_online(
                self.request,
                version,
                arrays=prediction.arrays,
                raw=prediction.raw,
                outputs=prediction.options.get("outputs"),
                items=prediction.items,
                deployment=deployment,
                shows_model=shows_model,
                timeout=timeout,
                throttles=self.throttle_windows(),
            )
            if served is not None:
                answer = online_answer(
                    version, *served, deployment=deployment, shows_model=shows_model, encoding=prediction.encoding
                )
                return Response(answer)
        self.count_throttles()
        job, waited = submit_prediction(
            self.request,
            version,
            prediction,
            deployment=deployment,
            timeout=timeout,
            wait=not wants_async,
            webhook_url=webhook_url,
        )
        if waited is None:
            return self.accepted(job)
        outcome, payload = waited
        answer = answer_of(job, job.inference, outcome, payload, shows_model=shows_model)
        answer["url"] = self.prediction_url(job)
        if answer["status"] == JobStatus.FAILED:
            if answer.get("errors"):
                raise exceptions.ValidationError(answer["errors"])
            raise RunFailed(answer.get("error") or "The prediction failed.")
        return Response(answer)

    def accepted(self, job: Job) -> Response:
        url = self.prediction_url(job)
        return Response(
            {"job": str(job.uuid), "status": job.status, "url": url},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": url},
        )


PREDICT_SCHEMA = {
    "request": PredictionRequestSerializer,
    "responses": {
        200: PredictionSerializer,
        202: OpenApiResponse(description="Still running (or asked for asynchronously): poll the job's URL."),
        400: OpenApiResponse(description="The inputs are wrong: each error names the input and the reason."),
        403: OpenApiResponse(description="You may view the model but not run it."),
        404: OpenApiResponse(description="No such model or version, or you may not view it."),
        409: OpenApiResponse(description="The version has not passed validation."),
        422: OpenApiResponse(description="The model failed (could not load, ran past its time limit, ...)."),
    },
    "parameters": [
        OpenApiParameter("async", bool, description="Answer 202 at once with the job's URL."),
        OpenApiParameter("timeout", float, description="Seconds to wait before answering 202."),
    ],
    "tags": ["inference"],
}


class VersionPredictView(PredictMixin, ModelLookupMixin, APIView):
    """``POST /models/{owner}/{name}/versions/{label}/predict``; ``/models/{owner}/{name}/predict`` runs the
    latest published version."""

    def runnable_model(self) -> Model:
        """The model if the caller may run it, in one query; else 404 (not viewable) or 403 (viewable only)."""
        return self.allowed_model("run")

    @extend_schema(summary="Run a model version", **PREDICT_SCHEMA)
    def post(self, request, owner: str, name: str, label: str | None = None) -> Response:
        from apps.inference.online.access import remembered

        version = remembered(request, ("version", owner, name, label), lambda: self.runnable_version(label))
        return self.run_prediction(version)

    def runnable_version(self, label: str | None) -> ModelVersion:
        """The version the route names, if the caller may run it (409 when there is none to run)."""
        model = self.runnable_model()
        versions = ModelVersion.objects.filter(model=model)  # the model (with its organization) is at hand
        if label is None:
            version = versions.filter(status=VersionStatus.PUBLISHED).order_by("-published_at", "-id").first()
            if version is None:
                raise Conflict(f"{model} has no published version to run; name one.")
        else:
            version = get_object_or_404(versions, label=label)
            if version.status == VersionStatus.DRAFT:  # a draft runs only for those who may change the model
                self.hide_draft(version)
        version.model = model
        self.refuse_yanked(version, pinned=label is not None)
        return version


class DeploymentLookupMixin:
    RELATED = (
        "organization",
        "model__organization",
        "version__model__organization",
        "canary_version__model__organization",
    )

    def deployment(self) -> Deployment:
        if not hasattr(self, "_deployment"):
            self._deployment = lookup.find_allowed(
                Deployment.objects.select_related(*self.RELATED),
                self.request.user,
                within_organization=bound_organization_id(self.request),
                organization__slug=self.kwargs["org_slug"],
                slug=self.kwargs["slug"],
            )
        return self._deployment

    # What running a deployment reads: its versions are versions of its model (services._servable checks), so their
    # model is not joined twice more (a model row carries its card, up to 200 KB).
    RUN_RELATED = ("organization", "model__organization", "version", "canary_version")

    def require_deployment(self, action: str, *, related: tuple[str, ...] | None = None) -> Deployment:
        """The deployment if the caller may ``action`` it, in one query (core's ``find_allowed_at_once``); else 404
        (not viewable) or 403."""
        with api_refusals():
            allowed = lookup.find_allowed_at_once(
                Deployment.objects.select_related(*(related or self.RELATED)),
                self.request.user,
                action,
                within_organization=bound_organization_id(self.request),
                message="You may view the deployment {obj} but not {action} it.",
                organization__slug=self.kwargs["org_slug"],
                slug=self.kwargs["slug"],
            )
        for version in (allowed.version, allowed.canary_version):
            if version is not None and version.model_id == allowed.model_id:
                version.model = allowed.model
        self._deployment = allowed
        return allowed


class DeploymentPredictView(PredictMixin, DeploymentLookupMixin, APIView):
    """``POST /deployments/{org}/{slug}/predict``: the version the deployment serves now answers."""

    @extend_schema(summary="Run a deployment", **PREDICT_SCHEMA)
    def post(self, request, org_slug: str, slug: str) -> Response:
        from apps.inference.online.access import remembered

        def decide() -> tuple[Deployment, bool]:
            deployment = self.require_deployment("run", related=self.RUN_RELATED)
            return deployment, self.shows_model(deployment)

        deployment, shows_model = remembered(request, ("deployment", org_slug, slug), decide)
        try:
            version = services.serving_choice(deployment)
        except services.DeploymentPaused as exc:
            raise Conflict(str(exc)) from exc
        return self.run_prediction(version, deployment=deployment, shows_model=shows_model)


# --- predictions you made ---------------------------------------------------------------------------------------


class PredictionViewSet(
    RestrictedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Predictions you may see: yours, and those counted against organizations you administer."""

    queryset = Job.objects.filter(kind__in=PREDICTION_KINDS).select_related(
        "organization",
        "inference__version__model__organization",
        "inference__deployment__organization",
        "inference__revision",
    )
    serializer_class = PredictionSerializer
    requires_signed_in = True
    lookup_field = "uuid"
    filterset_fields = ["status"]
    ordering = ["-created_at"]

    @extend_schema(summary="Predictions you may see", tags=["inference"])
    def list(self, request, *args, **kwargs) -> Response:
        page = list(self.paginate_queryset(self.filter_queryset(self.get_queryset())))
        self._viewable = self._models_viewable(page)
        items = [self._answer(job, full=False) for job in page]
        return self.get_paginated_response(items)

    @extend_schema(summary="One prediction: status, outputs, answer, provider, timings", tags=["inference"])
    def retrieve(self, request, *args, **kwargs) -> Response:
        job = self.get_object()
        self._viewable = self._models_viewable([job])
        return Response(self._answer(job, full=True))

    def _models_viewable(self, jobs: list[Job]) -> set[int]:
        """The models of these predictions the caller may view (one query): an answer names only those."""
        models = [job.inference.version.model_id for job in jobs if job.inference.deployment_id]
        return viewable_models(self.request.user, bound_organization_id(self.request), models)

    def _answer(self, job: Job, *, full: bool) -> dict:
        shows_model = not job.inference.deployment_id or job.inference.version.model_id in self._viewable
        answer = answer_of(job, job.inference, shows_model=shows_model)
        if not full:
            answer.pop("outputs", None)
        answer["url"] = self.request.build_absolute_uri(reverse("api:prediction-detail", kwargs={"uuid": job.uuid}))
        answer["timings"] = answer.get("timings", job.inference.timings)
        return answer

    @extend_schema(
        summary="Webhook deliveries of a prediction", tags=["inference"], responses=WebhookDeliverySerializer(many=True)
    )
    @action(detail=True, methods=["get"], url_path="webhooks")
    def webhooks(self, request, *args, **kwargs) -> Response:
        job = self.get_object()
        return Response(WebhookDeliverySerializer(job.webhook_deliveries.all(), many=True).data)


# --- deployments ------------------------------------------------------------------------------------------------


@extend_schema(tags=["inference"], parameters=[ORG_SLUG])
class DeploymentViewSet(
    OrganizationNestedMixin,
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Deployments of an organization: members may create and change them, admins delete them."""

    queryset = Deployment.objects.select_related("organization", "model", "version", "canary_version")
    serializer_class = DeploymentSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "slug"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    search_fields = ["slug", "description", "model__name"]
    ordering = ["slug"]
    filterset_fields = ["status", "device"]

    def filter_to_parent(self, queryset):
        # One deployment is judged on its own visibility, as its predict route and KServe judge it: a public
        # deployment of a private organization answers its detail (without its model) and 403 to what the caller
        # may not do; the organization's list stays its members'.
        if self.detail:
            return queryset.filter(organization__slug=self.kwargs["org_slug"])
        return super().filter_to_parent(queryset)

    def get_serializer(self, *args: Any, **kwargs: Any):
        """The deployment serializer, told which of the deployments' models the caller may view (one query)."""
        instance = args[0] if args else kwargs.get("instance")
        items = [instance] if isinstance(instance, Deployment) else list(instance or [])
        context = kwargs.setdefault("context", self.get_serializer_context())
        if items:
            context["viewable_models"] = viewable_models(
                self.request.user, bound_organization_id(self.request), [item.model_id for item in items]
            )
        return super().get_serializer(*args, **kwargs)

    def _model(self, name: str) -> Model:
        model = Model.objects.filter(organization=self.organization, name=name).first()
        if model is None:
            raise exceptions.ValidationError({"model": [f"{self.organization.slug} has no model “{name}”."]})
        return model

    def _versions(self, model: Model, data: dict) -> dict:
        for field in ("version", "canary_version"):
            if field in data:
                label = data[field]
                if not label:
                    data[field] = None
                    continue
                version = ModelVersion.objects.filter(model=model, label=label).first()
                if version is None:
                    raise exceptions.ValidationError({field: [f"{model} has no version “{label}”."]})
                data[field] = version
        return data

    @extend_schema(
        summary="Deploy a model of the organization (members)", request=DeploymentWriteSerializer, tags=["inference"]
    )
    def create(self, request, *args, **kwargs) -> Response:
        self.require_organization_action(CREATE_IN)
        body = DeploymentWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.fields_given()
        data.pop("reason", None)
        model = self._model(data.pop("model"))
        slug = data.pop("slug")
        deployment = services.create_deployment(
            organization=self.organization, model=model, actor=request.user, slug=slug, **self._versions(model, data)
        )
        return Response(
            self.get_serializer(self.get_queryset().get(pk=deployment.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Change a deployment (a new revision)", request=DeploymentWriteSerializer, tags=["inference"]
    )
    def partial_update(self, request, *args, **kwargs) -> Response:
        deployment = self.get_object()
        self.check_restricted(deployment, "change")
        body = DeploymentWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = body.fields_given()
        if "model" in data and data.pop("model") != deployment.model.name:
            raise exceptions.ValidationError({"model": ["A deployment's model cannot change; make a new deployment."]})
        if "slug" in data and data.pop("slug") != deployment.slug:
            raise exceptions.ValidationError({"slug": ["A deployment's slug cannot change."]})
        reason = data.pop("reason", "")
        changes = self._versions(deployment.model, data)
        with self.locked_for(deployment, "change") as locked:
            services.update_deployment(deployment=locked, actor=request.user, reason=reason, **changes)
        return Response(self.get_serializer(self.get_queryset().get(pk=deployment.pk)).data)

    def delete_object(self, instance: Deployment) -> None:
        services.delete_deployment(deployment=instance, actor=self.request.user)

    @extend_schema(summary="Roll back to an earlier revision", request=RollbackSerializer, tags=["inference"])
    @action(detail=True, methods=["post"], restrict_action="change")
    def rollback(self, request, *args, **kwargs) -> Response:
        deployment = self.get_object()
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with self.locked_for(deployment, "change") as locked:
            services.rollback_deployment(
                deployment=locked, actor=request.user, to_revision=body.validated_data.get("revision")
            )
        return Response(self.get_serializer(self.get_queryset().get(pk=deployment.pk)).data)

    @extend_schema(
        summary="The deployment's revisions; ?at=<time> the one current then, ?job=<uuid> the one that served it",
        tags=["inference"],
        responses=DeploymentRevisionSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def revisions(self, request, *args, **kwargs) -> Response:
        deployment = self.get_object()
        if not viewable_models(request.user, bound_organization_id(request), [deployment.model_id]):
            # The history names the versions it served: for those who may see the model behind it.
            raise exceptions.PermissionDenied(
                f"The revisions of {deployment} name the model it serves, which you may not view.",
                code="model_not_viewable",
            )
        revisions = deployment.revisions.select_related("created_by")
        if request.query_params.get("job"):
            inference = InferenceJob.objects.filter(
                deployment=deployment, job__uuid=request.query_params["job"]
            ).first()
            if inference is None:
                raise exceptions.NotFound("No prediction of this deployment has that job id.")
            revisions = revisions.filter(pk=inference.revision_id)
            data = DeploymentRevisionSerializer(revisions, many=True).data
            for item in data:
                item["served_version"] = inference.version.label
            return Response(data)
        if request.query_params.get("at"):
            from django.utils.dateparse import parse_datetime

            when = parse_datetime(request.query_params["at"])
            if when is None:
                raise exceptions.ValidationError({"at": ["Expected an ISO 8601 time, e.g. 2026-12-03T14:03:00Z."]})
            found = services.revision_at(deployment, when)
            return Response(DeploymentRevisionSerializer([found] if found else [], many=True).data)
        page = self.paginate_queryset(revisions)
        return self.get_paginated_response(DeploymentRevisionSerializer(page, many=True).data)


class WebhookSecretView(OrganizationNestedMixin, generics.GenericAPIView):
    """The secret that signs the organization's webhooks: admins read it (GET) and rotate it (POST)."""

    scope_for_action = {"view": TokenScope.ADMIN, "change": TokenScope.ADMIN}

    def get_restrict_action(self) -> str:
        return "view" if self.request.method == "GET" else "change"

    @extend_schema(
        summary="The organization's webhook signing secret (admins)", tags=["inference"], responses={200: dict}
    )
    def get(self, request, org_slug: str) -> Response:
        self.require_organization_action(ADMINISTER)
        return Response({"secret": secret_of(self.organization.pk), "header": "X-GPUX-Signature"})

    @extend_schema(
        summary="Rotate the webhook signing secret (admins)", tags=["inference"], request=None, responses={200: dict}
    )
    def post(self, request, org_slug: str) -> Response:
        self.require_organization_action(ADMINISTER)
        return Response(
            {"secret": rotate_secret(self.organization.pk, actor=request.user), "header": "X-GPUX-Signature"}
        )
