"""Inference pages: "try it" on a model's and a version's page, the inference jobs you may see, and an
organization's deployments (list, live status, revisions with rollback, create, edit, pause, delete).

/models/<owner>/<name>/versions/<label>/try/                 inference-try-it           POST: run the version once
/inference/jobs/                                             inference-jobs             your inference jobs
/inference/jobs/<uuid>/                                      inference-job              one job: inputs, answer, timings
/inference/jobs/<uuid>/answer/                               inference-job-answer       its answer (htmx polls it)
/orgs/<org_slug>/deployments/                                org-deployments            the list
/orgs/<org_slug>/deployments/new/                            org-deployment-create      members
/orgs/<org_slug>/deployments/<slug>/                         org-deployment             settings, live status, history
/orgs/<org_slug>/deployments/<slug>/live/                    org-deployment-live        live status (htmx polls it)
/orgs/<org_slug>/deployments/<slug>/edit/                    org-deployment-edit        members: a new revision
/orgs/<org_slug>/deployments/<slug>/rollback/                org-deployment-rollback    POST {revision}, members
/orgs/<org_slug>/deployments/<slug>/pause/                   org-deployment-pause       POST, members
/orgs/<org_slug>/deployments/<slug>/resume/                  org-deployment-resume      POST, members
/orgs/<org_slug>/deployments/<slug>/delete/                  org-deployment-delete      POST {confirm_slug}, admins
/orgs/<org_slug>/deployments/<slug>/access/                  org-deployment-access      POST: grant (admins)
/orgs/<org_slug>/deployments/<slug>/access/revoke/           org-deployment-access-revoke POST: revoke (admins)

Pages answer as the API does: 404 for what the caller may not view, 403 for what they may view but not act on,
the sign-in page for anonymous callers. "Try it" calls the API's own services (``read_json_request``,
``start_prediction``, ``wait_finished``, ``answer_of``): the model runs on a worker, never in the web process.
Every deployment change is a service call (``apps.inference.services``) that writes a revision and an audit
event, or refuses with a ValidationError shown on its field and writes nothing.
"""

from __future__ import annotations

import json
import statistics
import uuid as uuid_module
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import numpy as np
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from apps.analytics import live
from apps.analytics.models import Outcome
from apps.analytics.services import has_used
from apps.core import lookup
from apps.core.api.jobs import JobFilterSet
from apps.core.forms import add_service_errors
from apps.core.jobs import Job, JobStatus
from apps.core.lookup import CREATE_IN
from apps.core.mixins import gate_redirect, get_viewable_or_404, paginate
from apps.core.templatetags.portal import human_duration
from apps.inference import services
from apps.inference.completion import wait_finished
from apps.inference.forms import (
    DeploymentForm,
    RunOnFileForm,
    TryItForm,
    add_input_errors,
    batch_file_example,
    describe_version,
    messages_of,
)
from apps.inference.models import Deployment, DeploymentStatus, InferenceJob, PipelineRun
from apps.inference.predictions import (
    NotRunnable,
    NoWorker,
    acting_organization,
    answer_of,
    read_json_request,
    require_runnable,
    start_prediction,
    viewable_models,
)
from apps.marketplace.models import Alias, Model, ModelVersion, VersionStatus
from apps.marketplace.views import ModelPageMixin
from apps.organizations.access_panel import access_panel_context, access_views
from apps.organizations.views import OrganizationAction, OrganizationPage

INFERENCE_KINDS = "inference."
LIVE_WINDOW = timedelta(hours=1)
RECENT_REQUESTS = 10
LATENCY_SAMPLE = 500
TENSOR_HEAD = 16
EMBEDDING_HEAD = 8
TIMING_LABELS = (
    ("queued_ms", "queued"),
    ("load_ms", "load"),
    ("batch_ms", "batch"),
    ("run_ms", "run"),
    ("post_ms", "post-processing"),
    ("worker_ms", "on the worker"),
)
DEPLOYMENT_CHANGE = Deployment.access.role_for("change")


# --- answers, readable ----------------------------------------------------------------------------------------


def _format_number(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


def _tensor_summary(name: str, value: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """An output as its shape, type and first values: ``{"name", "shape", "dtype", "head", "more"}``."""
    if isinstance(value, dict) and "shape" in value:  # b64 or npy encoding: the values stay encoded
        return {"name": name, "shape": value.get("shape"), "dtype": value.get("dtype"), "head": [], "more": True}
    try:
        array = np.asarray(value)
        if array.dtype == object:
            raise ValueError("not a tensor")
    except (TypeError, ValueError):
        text = json.dumps(value, default=str)
        return {"name": name, "shape": None, "dtype": meta.get("dtype"), "text": text[:300], "more": len(text) > 300}
    flat = array.reshape(-1)
    return {
        "name": name,
        "shape": list(meta.get("shape") or array.shape),
        "dtype": meta.get("dtype") or str(array.dtype),
        "head": [_format_number(item) for item in flat[:TENSOR_HEAD]],
        "more": flat.size > TENSOR_HEAD,
    }


def _embedding_summary(vector: Any) -> dict[str, Any]:
    """An embedding as the page shows it: its dimension, its first values to 4 decimals, and the whole vector as
    JSON for "Copy vector", each value to float32's 7 significant digits (what the model computed, no noise)."""
    array = np.asarray(vector, dtype=np.float64)
    flat = array.reshape(-1)
    return {
        "dimension": " × ".join(str(dim) for dim in array.shape),
        "size": flat.size,
        "head": [f"{item:.4f}" for item in flat[:EMBEDDING_HEAD]],
        "more": flat.size > EMBEDDING_HEAD,
        "json": json.dumps(_significant(array.tolist())),
    }


def _significant(value: Any) -> Any:
    if isinstance(value, list):
        return [_significant(item) for item in value]
    return float(f"{value:.7g}")


def score_text(score: float) -> str:
    """A class score as people read it: two decimals (``0.98``), ``<0.01`` for a small one that is not zero."""
    if 0 < score < 0.005:
        return "<0.01"
    return f"{score:.2f}"


def total_ms(job: Job) -> float | None:
    """From the job row's creation to its end: what the caller waited, queue included."""
    if job.finished_at is None:
        return None
    return max(0.0, (job.finished_at - job.created_at).total_seconds() * 1000)


def timing_rows(timings: dict[str, Any], job: Job) -> list[tuple[str, str]]:
    """The stages the worker measured, in order, and the total, as ``(label, "12 ms")`` (``1.15 s`` past a second)."""
    rows = [
        (label, human_duration(float(timings[key]) / 1000))
        for key, label in TIMING_LABELS
        if timings.get(key) is not None
    ]
    total = total_ms(job)
    if total is not None:
        rows.append(("total", human_duration(total / 1000)))
    return rows


def present_answer(answer: dict[str, Any], job: Job) -> dict[str, Any]:
    """``answer_of``'s dict as the page shows it: labels with scores, embeddings, tensors, provider, timings."""
    readable = answer.get("answer") or {}
    predictions = []
    for item in readable.get("predictions") or []:
        scores = sorted((item.get("scores") or {}).items(), key=lambda pair: -pair[1])
        top = dict(scores).get(item.get("label"))
        predictions.append(
            {
                "label": item.get("label"),
                "score": score_text(top) if top is not None else "",
                "scores": [(label, score_text(s), round(max(0.0, min(1.0, s)) * 100, 1)) for label, s in scores],
            }
        )
    meta = (job.result or {}).get("outputs") or {}
    return {
        "job": job,
        "status": answer["status"],
        "provider": answer.get("provider"),
        "batch_size": answer.get("batch_size"),
        "predictions": predictions,
        "embeddings": [_embedding_summary(vector) for vector in readable.get("embeddings") or []],
        "tensors": [
            _tensor_summary(name, value, meta.get(name) or {}) for name, value in (answer.get("outputs") or {}).items()
        ],
        "timings": timing_rows(answer.get("timings") or {}, job),
        "error": answer.get("error"),
        "errors": answer.get("errors") or {},
    }


# --- try it ---------------------------------------------------------------------------------------------------


def _yanked_for(user: Any, version: ModelVersion) -> bool:
    # The API's yank rule for running a named version: only those who used it before.
    return version.status == VersionStatus.YANKED and not has_used(actor=user, subject=version)


def try_it_state(request: HttpRequest, version: ModelVersion | None, *, may_run: bool) -> dict[str, Any]:
    """What the "try it" card of ``version`` shows: the form, or why there is none (sign in, no right to run,
    not validated, yanked); and the "Deploy" link for members of the model's organization."""
    from apps.organizations.services import role_of

    state: dict[str, Any] = {"version": version, "refusal": "", "sign_in_url": "", "form": None, "result": None}
    if version is None:
        return state
    model = version.model
    user = request.user
    kwargs = {"owner": model.organization.slug, "name": model.name, "label": version.label}
    state["post_url"] = reverse("inference-try-it", kwargs=kwargs)
    state["api_url"] = reverse("api:model-version-predict", kwargs=kwargs)
    role = role_of(user, model.organization) if user.is_authenticated else None
    if role is not None and role >= DEPLOYMENT_CHANGE and version.status in services.SERVABLE:
        query = urlencode({"model": model.name, "version": version.label})
        state["deploy_url"] = f"{reverse('org-deployment-create', args=[model.organization.slug])}?{query}"
    try:
        require_runnable(version)
    except NotRunnable as exc:
        state["refusal"] = str(exc)
        return state
    if not user.is_authenticated:
        state["refusal"] = "Sign in to run this model from here."
        state["sign_in_url"] = f"{reverse(settings.LOGIN_URL)}?{urlencode({'next': request.get_full_path()})}"
        return state
    if not may_run:
        state["refusal"] = (
            f"You may view {model} but not run it: running takes the member role in {model.organization.slug} "
            "(or a run grant)."
        )
        return state
    if _yanked_for(user, version):
        state["refusal"] = f"Version {version.label} was yanked: {version.yank_reason} It is not run from here."
        return state
    state["description"] = describe_version(version)
    state["form"] = TryItForm(description=state["description"], auto_id=f"try-{version.pk}-%s")
    return state


def try_it_context(request: HttpRequest, version: ModelVersion | None, *, may_run: bool) -> dict[str, Any]:
    """The context ``{% include "inference/try_it.html" %}`` and ``run_on_file.html`` need on a model's or a version's
    page: "Run on a file" is offered where "try it" is (signed in, allowed to run, a runnable version)."""
    state = try_it_state(request, version, may_run=may_run)
    return {"try_it": state, "run_file": run_on_file_state(version) if state["form"] is not None else None}


def run_on_file_state(version: ModelVersion, form: RunOnFileForm | None = None) -> dict[str, Any]:
    """What the "Run on a file" card shows: its form, where it posts, an example of the file, the size limit."""
    from apps.inference.batch import max_batch_file_bytes

    model = version.model
    kwargs = {"owner": model.organization.slug, "name": model.name, "label": version.label}
    return {
        "version": version,
        "form": form or RunOnFileForm(auto_id=f"batch-{version.pk}-%s"),
        "post_url": reverse("inference-run-on-file", kwargs=kwargs),
        "api_url": reverse("api:model-version-batch", kwargs=kwargs),
        "example": batch_file_example(version),
        "max_mb": max(1, max_batch_file_bytes() // (1024 * 1024)),
    }


class RunOnFileView(ModelPageMixin, View):
    """POST "Run on a file": the rows of an uploaded CSV, JSON Lines or .npz file, run as one batch job
    (``start_batch_inference``, the API's service), then its page, which follows it and offers the results.

    400 with the reason on its field (``file``, ``format``) and nothing written; 409 for a version that cannot run,
    410 for a yanked one; 404/403 as the model's page (the ``run`` right).
    """

    http_method_names = ["post"]
    model_action = "run"

    def refused(self, state: dict[str, Any], status: int) -> HttpResponse:
        context = {**self.model_context(), "run_file": state, "version": state["version"]}
        return render(self.request, "inference/run_on_file_page.html", context, status=status)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from apps.inference.batch import start_batch_inference

        version = self.version_by_label(kwargs["label"])
        form = RunOnFileForm(request.POST, request.FILES, auto_id=f"batch-{version.pk}-%s")
        state = run_on_file_state(version, form)
        if _yanked_for(request.user, version):
            form.add_error(None, f"Version {version.label} was yanked: {version.yank_reason} It is not run from here.")
            return self.refused(state, 410)
        if not form.is_valid():
            return self.refused(state, 400)
        try:
            job = start_batch_inference(
                version=version,
                uploaded=form.cleaned_data["file"],
                input_format=form.cleaned_data["format"] or None,
                user=request.user,
                organization=acting_organization(request.user, None, version.model.organization_id),
            )
        except NotRunnable as exc:
            form.add_error(None, str(exc))
            return self.refused(state, 409)
        except ValidationError as exc:
            add_service_errors(form, _file_errors_on_file(exc))
            return self.refused(state, 400)
        messages.success(request, "The file was accepted: its rows run below, and their results download here.")
        return redirect("job-detail", uuid=job.uuid)


def _file_errors_on_file(error: ValidationError) -> ValidationError:
    """An .npz's errors name its arrays (``file.float_input``): on the page they go under the file, each saying
    which array."""
    if not hasattr(error, "error_dict"):
        return error
    merged: dict[str, list[str]] = {}
    for field, messages_ in error.message_dict.items():
        if field.startswith("file."):
            merged.setdefault("file", []).extend(f"{field[5:]}: {message}" for message in messages_)
        else:
            merged.setdefault(field, []).extend(messages_)
    return ValidationError(merged)


class TryItView(ModelPageMixin, View):
    """POST a "try it" form: the prediction runs on a worker; the page waits for it up to the form's wait.

    Answers the card again (htmx swaps it in; without JavaScript, a page around it): 200 with the answer,
    202 with a link to the job while it still runs, 400 with the errors on their fields, 409 for a version
    that cannot run, 410 for a yanked one, 422 when the model failed, 503 when no worker can take it.
    """

    http_method_names = ["post"]
    model_action = "run"

    def render_card(self, state: dict[str, Any], status: int) -> HttpResponse:
        template = "inference/try_it.html" if self.request.headers.get("HX-Request") else "inference/try_it_page.html"
        context = {**self.model_context(), "try_it": state, "version": state["version"]}
        return render(self.request, template, context, status=status)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        version = self.version_by_label(kwargs["label"])
        state = try_it_state(request, version, may_run=True)
        if state["form"] is None:
            return self.render_card(state, status=410 if _yanked_for(request.user, version) else 409)
        form = TryItForm(request.POST, request.FILES, description=state["description"], auto_id=f"try-{version.pk}-%s")
        state["form"] = form
        if not form.is_valid():
            return self.render_card(state, status=400)
        try:
            prediction = read_json_request(version, form.request_body())
        except ValidationError as exc:
            add_input_errors(form, messages_of(exc))
            return self.render_card(state, status=400)
        try:
            job = start_prediction(
                version=version,
                request=prediction,
                user=request.user,
                organization=acting_organization(request.user, None, version.model.organization_id),
            )
        except NoWorker as exc:
            form.add_error(None, str(exc))
            return self.render_card(state, status=503)
        waited = wait_finished(job, form.wait_seconds())
        if waited is None:
            state["result"] = {"job": job, "status": job.status, "pending": True}
            return self.render_card(state, status=202)
        outcome, payload = waited
        job.refresh_from_db()
        inference = job.inference
        if "result" not in outcome:  # no Redis message: the database has the outcome
            inference.refresh_from_db()
        answer = answer_of(job, inference, outcome, payload)
        if answer["status"] == JobStatus.FAILED and answer.get("errors"):
            add_input_errors(form, answer["errors"])
            state["result"] = {"job": job, "status": JobStatus.FAILED, "refused": True}
            return self.render_card(state, status=400)
        state["result"] = present_answer(answer, job)
        return self.render_card(state, status=422 if answer["status"] == JobStatus.FAILED else 200)


# --- inference jobs -------------------------------------------------------------------------------------------


def _feature_row(job: Job) -> Any:
    for name in ("inference", "batch", "pipeline_run"):
        try:
            return getattr(job, name)
        except ObjectDoesNotExist:
            continue
    return None


def job_row(job: Job) -> dict[str, Any]:
    """One line of the jobs list: what ran (model@version, deployment), status, provider, timings."""
    feature = _feature_row(job)
    version = getattr(feature, "version", None)
    timings = getattr(feature, "timings", None) or {}
    deployment = getattr(feature, "deployment", None)
    return {
        "job": job,
        "version": version,
        "deployment": deployment,
        "pipeline": getattr(feature, "pipeline", None),
        "provider": getattr(feature, "provider", "") or "",
        "queued_ms": timings.get("queued_ms"),
        "run_ms": timings.get("run_ms"),
        "total_ms": total_ms(job),
    }


def job_rows(jobs: list[Job], user: Any) -> list[dict[str, Any]]:
    """``job_row`` of each job; a job with no feature row of its own (a performance measurement) names its
    version in its parameters: those versions are read in one query, among the ones the caller may view."""
    rows = [job_row(job) for job in jobs]
    wanted = {}
    for row in rows:
        named = (row["job"].params or {}).get("version") if isinstance(row["job"].params, dict) else None
        if row["version"] is None and isinstance(named, str):
            try:
                wanted[row["job"].pk] = str(uuid_module.UUID(named))
            except ValueError:
                continue
    if wanted:
        versions = ModelVersion.objects.restrict(user, "view").filter(uuid__in=set(wanted.values()))
        by_uuid = {str(v.uuid): v for v in versions.select_related("model__organization")}
        for row in rows:
            row["version"] = row["version"] or by_uuid.get(wanted.get(row["job"].pk, ""))
    # A run of a deployment whose model the caller may not view (their own run of a public deployment of a private
    # organization) names the deployment only, as the API does.
    served = [row for row in rows if row["deployment"] is not None and row["version"] is not None]
    viewable = viewable_models(user, None, [row["version"].model_id for row in served])
    for row in served:
        if row["version"].model_id not in viewable:
            row["version"] = None
    return rows


def describe_inference_jobs(rows: list[dict[str, Any]], user: Any) -> None:
    """The jobs pages' describer (``core.job_services.register_job_describer``) for inference jobs and any job
    whose parameters name a version (a validation, a benchmark): the model@version it ran, or the deployment or
    pipeline; a prediction's own page is its answer page. Names only what ``user`` may view (``job_rows``)."""
    from django.db.models import prefetch_related_objects

    mine = [row for row in rows if row["job"].kind.startswith(INFERENCE_KINDS) or _names_a_version(row["job"])]
    if not mine:
        return
    jobs = [row["job"] for row in mine]
    inference = [job for job in jobs if job.kind.startswith(INFERENCE_KINDS)]
    if inference:
        prefetch_related_objects(
            inference,
            "inference__version__model__organization",
            "inference__deployment__organization",
            "batch__version__model__organization",
            "pipeline_run__pipeline__organization",
        )
    for row, described in zip(mine, job_rows(jobs, user), strict=True):
        job, version, deployment = row["job"], described["version"], described["deployment"]
        if version is not None:
            owner = version.model.organization.slug
            row["subject"] = f"{owner}/{version.model.name}@{version.label}"
            row["subject_url"] = reverse("catalog-version", args=[owner, version.model.name, version.label])
            if deployment is not None:
                row["subject"] += f" · deployment {deployment.slug}"
        elif deployment is not None:
            row["subject"] = f"deployment {deployment.organization.slug}/{deployment.slug}"
        elif described["pipeline"] is not None:
            pipeline = described["pipeline"]
            row["subject"] = f"pipeline {pipeline.organization.slug}/{pipeline.slug}"
        feature = _feature_row(job) if job.kind.startswith(INFERENCE_KINDS) else None
        if isinstance(feature, InferenceJob):
            row["url"] = reverse("inference-job", kwargs={"uuid": job.uuid})
        elif isinstance(feature, PipelineRun):
            pipeline = feature.pipeline
            row["url"] = reverse("org-pipeline-run", args=[pipeline.organization.slug, pipeline.slug, job.uuid])


def _names_a_version(job: Job) -> bool:
    return isinstance(job.params, dict) and isinstance(job.params.get("version"), str)


def _inference_jobs(user: Any):
    return Job.objects.restrict(user, "view").filter(kind__startswith=INFERENCE_KINDS)


def inference_jobs(request: HttpRequest) -> HttpResponse:
    """/inference/jobs/: the predictions and other inference jobs the caller may see, newest first."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    jobs = _inference_jobs(request.user).select_related(
        "organization",
        "inference__version__model__organization",
        "inference__deployment__organization",
        "batch__version__model__organization",
        "batch__deployment__organization",
        "pipeline_run__pipeline__organization",
    )
    filterset = JobFilterSet(request.GET or None, queryset=jobs)
    valid = not filterset.is_bound or filterset.is_valid()
    page = paginate(request, (filterset.qs if valid else jobs.none()).order_by("-created_at", "-id"))
    page.object_list = job_rows(list(page.object_list), request.user)
    filtering = any(request.GET.get(key) for key in ("status", "kind", "organization"))
    context = {"filter": filterset, "page_obj": page, "filtering": filtering, "statuses": JobStatus.choices}
    return render(request, "inference/jobs.html", context, status=200 if valid else 400)


def _inference_job_for(request: HttpRequest, uuid: Any) -> Job:
    return get_viewable_or_404(
        Job.objects.filter(kind__startswith=INFERENCE_KINDS).select_related(
            "organization", "creator", "inference__version__model__organization", "inference__deployment__organization"
        ),
        request.user,
        uuid=uuid,
    )


def _job_context(job: Job, user: Any) -> dict[str, Any]:
    row = job_rows([job], user)[0]
    feature = _feature_row(job)
    context: dict[str, Any] = {"job": job, "row": row, "inference": None, "result": None}
    if isinstance(feature, InferenceJob):
        context["inference"] = feature
        context["inputs"] = _inputs_summary(feature)
        context["revision"] = feature.revision
        if job.is_finished:
            shows_model = row["version"] is not None or not feature.deployment_id
            context["result"] = present_answer(answer_of(job, feature, shows_model=shows_model), job)
        else:
            context["result"] = {"job": job, "status": job.status, "pending": True}
    elif job.is_finished:
        # No raw JSON here (a batch job's result names where the server keeps its file): its facts, and the job's
        # own page, which offers the downloads.
        from apps.core.views import result_facts

        context["result"] = {"job": job, "status": job.status, "error": job.error, "facts": result_facts(job.result)}
    else:
        context["result"] = {"job": job, "status": job.status, "pending": True}
    return context


def _inputs_summary(inference: InferenceJob) -> list[dict[str, Any]]:
    """What the request sent, readably: texts as typed, an image by its size, tensors by shape and type."""
    from apps.inference.execution import unpack_tensors

    rows: list[dict[str, Any]] = []
    for key, value in (inference.raw_inputs or {}).items():
        items = value if isinstance(value, list) else [value]
        if key == "image":
            rows.append({"name": key, "text": f"{len(items)} image(s), {sum(len(i) for i in items):,} base64 chars"})
        else:
            rows.append({"name": key, "text": " · ".join(str(item)[:500] for item in items[:10])})
    if not rows:
        for name, array in unpack_tensors(inference.inputs).items():
            rows.append(_tensor_summary(name, array, {}))
    return rows


def inference_job(request: HttpRequest, uuid: Any) -> HttpResponse:
    """/inference/jobs/<uuid>/: one inference job: what ran, its inputs, its answer or error, its timings."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    job = _inference_job_for(request, uuid)
    redirect_ = gate_redirect(request, job.organization)
    if redirect_ is not None:
        return redirect_
    return render(request, "inference/job_detail.html", _job_context(job, request.user))


def inference_job_answer(request: HttpRequest, uuid: Any) -> HttpResponse:
    """The answer fragment of a job, which htmx polls while the job runs (the same lookup as the page)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    job = _inference_job_for(request, uuid)
    if gate_redirect(request, job.organization) is not None:
        return HttpResponse(status=403)
    return render(request, "inference/_answer.html", _job_context(job, request.user))


# --- deployments ----------------------------------------------------------------------------------------------


def served_label(deployment: Deployment, alias_targets: dict[tuple[int, str], str] | None = None) -> str:
    """What the deployment serves now: ``1.0.0``, or ``production → 1.0.0`` for an alias."""
    if deployment.version_id:
        return deployment.version.label
    if alias_targets is None:
        target = (
            Alias.objects.filter(model=deployment.model_id, name=deployment.alias).select_related("version").first()
        )
        alias_targets = {(deployment.model_id, deployment.alias): target.version.label} if target else {}
    label = alias_targets.get((deployment.model_id, deployment.alias))
    return f"{deployment.alias} → {label}" if label else f"{deployment.alias} (points nowhere)"


def _online_recent(deployment: Deployment, since: Any) -> tuple[dict[str, Any], list[float], list[dict], list[str]]:
    """The online predictions of ``deployment`` (their usage records: they have no job row): counts of the window,
    the latencies of the newest answered ones, the newest requests and the latest errors. Three queries, and one
    for the labels of the versions that served the newest."""
    online = live.online_predictions(deployment_id=deployment.pk)
    window = online.filter(created_at__gte=since)
    counts = window.aggregate(
        requests=Count("pk"),
        succeeded=Count("pk", filter=Q(outcome=Outcome.OK)),
        failed=Count("pk", filter=~Q(outcome=Outcome.OK)),
    )
    latencies = list(
        window.filter(outcome=Outcome.OK, latency_ms__isnull=False)
        .order_by("-created_at")
        .values_list("latency_ms", flat=True)[:LATENCY_SAMPLE]
    )
    newest = list(
        online.order_by("-created_at").values("created_at", "version_id", "outcome", "latency_ms", "metadata")[
            :RECENT_REQUESTS
        ]
    )
    labels = dict(ModelVersion.objects.filter(pk__in={row["version_id"] for row in newest}).values_list("pk", "label"))
    recent = [
        {
            "at": row["created_at"],
            "url": None,
            "label": labels.get(row["version_id"], "—"),
            "revision": (row["metadata"] or {}).get("revision"),
            "status": JobStatus.FAILED if live.failed(row["outcome"]) else JobStatus.SUCCEEDED,
            "provider": (row["metadata"] or {}).get("provider"),
            "batch_size": (row["metadata"] or {}).get("batch_size"),
            "queued_ms": None,
            "total_ms": row["latency_ms"],
        }
        for row in newest
    ]
    errors = [
        (row["metadata"] or {}).get("error", "")
        for row in window.exclude(outcome=Outcome.OK).order_by("-created_at").values("metadata")[:3]
    ]
    return counts, latencies, recent, [error for error in errors if error]


def live_status(deployment: Deployment) -> dict[str, Any]:
    """The last hour of a deployment: requests, errors, p50/p95 latency (from the request to the answer) and the
    latest requests, online and durable ones each counted once (apps.analytics.live): durable predictions from their
    InferenceJob rows, online ones from their usage records, drained first."""
    records_waiting = live.catch_up()
    since = timezone.now() - LIVE_WINDOW
    window = InferenceJob.objects.filter(deployment=deployment, created_at__gte=since)
    counts = window.aggregate(
        requests=Count("pk"),
        succeeded=Count("pk", filter=Q(job__status=JobStatus.SUCCEEDED)),
        failed=Count("pk", filter=Q(job__status=JobStatus.FAILED)),
        waiting=Count("pk", filter=Q(job__status__in=(JobStatus.QUEUED, JobStatus.RUNNING))),
    )
    finished = (
        window.filter(job__status=JobStatus.SUCCEEDED, job__finished_at__isnull=False)
        .order_by("-created_at")
        .values_list("job__created_at", "job__finished_at")[:LATENCY_SAMPLE]
    )
    latencies = [max(0.0, (end - start).total_seconds() * 1000) for start, end in finished]
    durable = (
        InferenceJob.objects.filter(deployment=deployment)
        .select_related("job", "version", "revision")
        .order_by("-created_at")[:RECENT_REQUESTS]
    )
    recent = [
        {
            "at": row.job.created_at,
            "url": reverse("inference-job", args=[row.job.uuid]),
            "label": row.version.label,
            "revision": row.revision.number if row.revision else None,
            "status": row.job.status,
            "provider": row.provider,
            "batch_size": row.batch_size,
            "queued_ms": (row.timings or {}).get("queued_ms"),
            "total_ms": total_ms(row.job),
        }
        for row in durable
    ]
    errors = list(
        window.filter(job__status=JobStatus.FAILED).order_by("-created_at").values_list("job__error", flat=True)[:3]
    )
    online_counts, online_latencies, online_recent, online_errors = _online_recent(deployment, since)
    for key, value in online_counts.items():
        counts[key] += value
    latencies = sorted(latencies + online_latencies)
    return {
        **counts,
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p95_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] if latencies else None,
        "recent": sorted(recent + online_recent, key=lambda row: row["at"], reverse=True)[:RECENT_REQUESTS],
        "errors": (online_errors + errors)[:3],
        "since": since,
        "checked_at": timezone.now(),
        "records_waiting": records_waiting,
    }


class DeploymentPageMixin:
    """Resolves ``self.deployment`` of the page's organization through restrict(): 404 when not viewable,
    403 unless ``deployment_action`` is allowed."""

    deployment_action = "view"

    def get_deployment(self) -> Deployment:
        if not hasattr(self, "_deployment"):
            self._deployment = lookup.find_allowed(
                Deployment.objects.filter(organization=self.organization).select_related(
                    "organization", "model__organization", "version", "canary_version"
                ),
                self.request.user,
                self.deployment_action,
                message="You may view the deployment {obj} but not {action} it.",
                slug=self.kwargs["slug"],
            )
        return self._deployment

    def may(self, deployment: Deployment, action: str) -> bool:
        return lookup.allows(deployment, self.request.user, action)

    def deployment_url(self) -> str:
        return reverse("org-deployment", args=[self.organization.slug, self.get_deployment().slug])


class DeploymentListView(OrganizationPage):
    """The organization's deployments the caller may view: status, what each serves, canary, batching, and the
    requests of the last hour."""

    template_name = "inference/deployments.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        live.catch_up()
        since = timezone.now() - LIVE_WINDOW
        # Durable predictions from their rows, online ones from their usage records (apps.analytics.live): two
        # subqueries in the list's one query.
        durable = (
            InferenceJob.objects.filter(deployment=OuterRef("pk"), created_at__gte=since)
            .order_by()
            .values("deployment")
            .annotate(n=Count("pk"))
            .values("n")
        )
        deployments = (
            Deployment.objects.restrict(self.request.user, "view")
            .filter(organization=self.organization)
            .select_related("organization", "model", "version", "canary_version")
            .annotate(
                requests_last_hour=Coalesce(Subquery(durable, output_field=IntegerField()), Value(0))
                + live.online_requests_by_deployment(since)
            )
            .order_by("slug")
        )
        query = self.request.GET.get("q", "").strip()
        if query:
            deployments = deployments.filter(Q(slug__icontains=query) | Q(model__name__icontains=query))
        page = paginate(self.request, deployments)
        aliased = [(d.model_id, d.alias) for d in page.object_list if d.alias]
        targets = {
            (alias.model_id, alias.name): alias.version.label
            for alias in Alias.objects.filter(
                model_id__in={model for model, _ in aliased}, name__in={name for _, name in aliased}
            ).select_related("version")
        }
        for deployment in page.object_list:
            deployment.served = served_label(deployment, targets)
        context.update(page_obj=page, query=query, may_create=self.has_role(DEPLOYMENT_CHANGE))
        return context


class DeploymentDetailView(DeploymentPageMixin, OrganizationPage):
    """One deployment: its settings, live status (polled), revision history with rollback, its actions."""

    template_name = "inference/deployment_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        deployment = self.get_deployment()
        revisions = deployment.revisions.select_related("created_by").order_by("-number")
        context.update(
            deployment=deployment,
            served=served_label(deployment),
            live=live_status(deployment),
            page_obj=paginate(self.request, revisions, per_page=20),
            may_change=self.may(deployment, "change"),
            may_delete=self.may(deployment, "delete"),
            predict_url=self.request.build_absolute_uri(
                reverse("api:deployment-predict", kwargs={"org_slug": self.organization.slug, "slug": deployment.slug})
            ),
        )
        context.update(
            access_panel_context(
                self.request,
                deployment,
                grant_url=reverse("org-deployment-access", args=[self.organization.slug, deployment.slug]),
                revoke_url=reverse("org-deployment-access-revoke", args=[self.organization.slug, deployment.slug]),
            )
        )
        return context


class DeploymentLiveFragment(DeploymentPageMixin, OrganizationPage):
    """The live status panel, which the detail page's htmx polls every few seconds."""

    template_name = "inference/_deployment_live.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        deployment = self.get_deployment()
        context.update(deployment=deployment, served=served_label(deployment), live=live_status(deployment))
        return context


def _organization_models(organization: Any, user: Any) -> list[Model]:
    return list(Model.objects.restrict(user, "view").filter(organization=organization).order_by("name"))


def _choices_for(models: list[Model], model_name: str | None) -> dict[str, Any]:
    """The labels and aliases offered in the form's datalists: servable versions of the chosen model (or all)."""
    chosen = [model for model in models if model.name == model_name] or models
    versions = (
        ModelVersion.objects.filter(model__in=chosen, status__in=services.SERVABLE)
        .order_by("model__name", "-published_at")
        .values_list("label", "model__name")
    )
    aliases = Alias.objects.filter(model__in=chosen).order_by("name").values_list("name", "model__name")
    return {"version_choices": list(versions), "alias_choices": list(aliases)}


class DeploymentCreateView(OrganizationPage):
    """Members deploy one of the organization's models (``?model=<name>&version=<label>`` fills the form in)."""

    template_name = "inference/deployment_form.html"
    organization_action = CREATE_IN  # members (Organization.access)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = context["form"]
        chosen = form["model"].value()
        context.update(creating=True, **_choices_for(context["models"], chosen))
        return context

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        models = _organization_models(self.organization, request.user)
        initial = {"model": request.GET.get("model", ""), "version": request.GET.get("version", "")}
        if initial["model"] and not initial.get("slug"):
            initial["slug"] = initial["model"][:50].lower().replace("_", "-").replace(".", "-")
        return self.render_page(form=DeploymentForm(initial=initial, models=models), models=models)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        models = _organization_models(self.organization, request.user)
        form = DeploymentForm(request.POST, models=models)
        if form.is_valid():
            model = next(model for model in models if model.name == form.cleaned_data["model"])
            try:
                deployment = services.create_deployment(
                    organization=self.organization,
                    model=model,
                    actor=request.user,
                    slug=form.cleaned_data["slug"],
                    **form.settings_for(model),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Deployment {deployment} created: it serves {served_label(deployment)}.")
                return redirect("org-deployment", self.organization.slug, deployment.slug)
        return self.render_page(status=400, form=form, models=models)


class DeploymentEditView(DeploymentPageMixin, OrganizationPage):
    """Members change a deployment's settings: a new revision when anything changed."""

    template_name = "inference/deployment_form.html"
    deployment_action = "change"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        deployment = self.get_deployment()
        context.update(creating=False, deployment=deployment, **_choices_for([deployment.model], deployment.model.name))
        return context

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render_page(form=DeploymentForm(models=[], deployment=self.get_deployment()))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        deployment = self.get_deployment()
        form = DeploymentForm(request.POST, models=[], deployment=deployment)
        if form.is_valid():
            before = deployment.revision
            try:
                changed = services.update_deployment(
                    deployment=deployment,
                    actor=request.user,
                    reason=form.cleaned_data.get("reason", ""),
                    **form.settings_for(deployment.model),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                if changed.revision == before:
                    messages.info(request, "Nothing changed: no new revision.")
                else:
                    messages.success(request, f"Saved as revision {changed.revision}.")
                return HttpResponseRedirect(self.deployment_url())
        return self.render_page(status=400, form=form)


class DeploymentAction(DeploymentPageMixin, OrganizationAction):
    """A POST button on a deployment's page; a service's refusal becomes a message on the page it returns to."""

    deployment_action = "change"

    def next_url(self) -> str:
        return self.deployment_url()


class DeploymentRollbackView(DeploymentAction):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        deployment = self.get_deployment()
        try:
            revision = int(request.POST.get("revision", ""))
        except ValueError:
            messages.error(request, "revision: give the number of the revision to roll back to.")
            return self.back()
        try:
            rolled = services.rollback_deployment(deployment=deployment, actor=request.user, to_revision=revision)
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(
            request,
            f"Rolled back: revision {rolled.revision} serves what revision {revision} served ({served_label(rolled)}).",
        )
        return self.back()


class DeploymentPauseView(DeploymentAction):
    status = DeploymentStatus.PAUSED
    done = "Paused: requests answer 409 until it is resumed."
    already = "The deployment is already paused."

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        deployment = self.get_deployment()
        if deployment.status == self.status:
            messages.info(request, self.already)
            return self.back()
        try:
            services.update_deployment(
                deployment=deployment, actor=request.user, reason=f"{self.status} from the page", status=self.status
            )
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(request, self.done)
        return self.back()


class DeploymentResumeView(DeploymentPauseView):
    status = DeploymentStatus.ACTIVE
    done = "Resumed: the deployment serves requests again."
    already = "The deployment is already active."


class DeploymentDeleteView(DeploymentAction):
    deployment_action = "delete"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        deployment = self.get_deployment()
        if request.POST.get("confirm_slug", "").strip() != deployment.slug:
            messages.error(request, f"Type the deployment's slug, “{deployment.slug}”, to delete it.")
            return self.back()
        services.delete_deployment(deployment=deployment, actor=request.user)
        messages.success(request, f"Deployment {deployment} deleted; its past requests stay in the jobs list.")
        return HttpResponseRedirect(reverse("org-deployments", args=[self.organization.slug]))


def _deployment_url(deployment: Deployment) -> str:
    return reverse("org-deployment", args=[deployment.organization.slug, deployment.slug])


DeploymentGrantView, DeploymentRevokeView = access_views(
    model=Deployment,
    lookup=lambda org_slug, slug, **rest: {"organization__slug": org_slug, "slug": slug},
    url_of=_deployment_url,
)
