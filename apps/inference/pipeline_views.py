"""Pipeline pages: an organization's pipelines, the builder (pick versions, map outputs to inputs, checked as you
go), a pipeline's page with its run form, and a run's page with each step's timing and outputs.

/orgs/<org_slug>/pipelines/                             org-pipelines           the list (viewers)
/orgs/<org_slug>/pipelines/new/                         org-pipeline-create     the builder; POST saves (members)
/orgs/<org_slug>/pipelines/new/check/                   org-pipeline-check      POST: the builder checked again (htmx)
/orgs/<org_slug>/pipelines/<slug>/                      org-pipeline            steps, inputs, run form, recent runs
/orgs/<org_slug>/pipelines/<slug>/run/                  org-pipeline-run-start  POST: run it (members), then its page
/orgs/<org_slug>/pipelines/<slug>/runs/<uuid>/          org-pipeline-run        one run: progress, steps, outputs

Saving goes through ``pipelines.save_pipeline`` and running through ``read_run_request`` / ``start_pipeline_run``,
the API's own services: the same checks, every problem named by its field, nothing written when one is wrong.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.core import lookup
from apps.core.jobs import Job
from apps.core.lookup import CREATE_IN
from apps.core.mixins import get_viewable_or_404, paginate
from apps.core.parsing import InvalidText, NestingTooDeep, loads_json
from apps.inference import pipelines
from apps.inference.forms import zeros_example
from apps.inference.models import Pipeline, PipelineRun
from apps.marketplace.models import ModelVersion, ValidationStatus, VersionStatus
from apps.organizations.views import OrganizationPage

MAX_VERSION_CHOICES = 300


# --- the builder's state, read from its form --------------------------------------------------------------------


def runnable_versions(user: Any) -> list[ModelVersion]:
    """The versions a builder offers: validated, not yanked, that ``user`` may run (one query)."""
    return list(
        ModelVersion.objects.restrict(user, "run")
        .filter(validation_status=ValidationStatus.PASSED)
        .exclude(status__in=[VersionStatus.YANKED, VersionStatus.DRAFT])
        .select_related("model__organization")
        .order_by("model__organization__slug", "model__name", "-created_at")[:MAX_VERSION_CHOICES]
    )


def _shape(entry: dict[str, Any]) -> str:
    shape = entry.get("shape")
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]" if shape is not None else "[…]"


def _fits(output: dict[str, Any], wanted: dict[str, Any]) -> bool:
    if output.get("elem_type") != wanted.get("elem_type"):
        return False
    return pipelines._shape_conflict(output.get("shape"), wanted.get("shape")) is None


def builder_state(data: Any, user: Any, *, add_step: bool = False) -> dict[str, Any]:
    """The builder as the form describes it: each step's name, version and input mapping (an input left unmapped
    takes the latest earlier output of its type and shape, else a pipeline input of its name), with the choices
    each select offers."""
    choices = runnable_versions(user)
    by_reference = {pipelines.reference_of(version): version for version in choices}
    try:
        count = int(data.get("step_count") or 1)
    except (TypeError, ValueError):
        count = 1
    count = max(1, min(pipelines.MAX_STEPS, count + (1 if add_step else 0)))
    steps: list[dict[str, Any]] = []
    for index in range(count):
        name = str(data.get(f"steps-{index}-name") or f"step{index + 1}").strip()
        reference = str(data.get(f"steps-{index}-version") or "").strip()
        version = by_reference.get(reference)
        mapping: dict[str, str] = {}
        rows: list[dict[str, Any]] = []
        for entry in (version.signature or {}).get("inputs", []) if version is not None else []:
            options = [(f"input.{entry['name']}", f"pipeline input “{entry['name']}”")]
            fitting = ""
            for earlier in steps:
                earlier_version = earlier["version_obj"]
                for output in (earlier_version.signature or {}).get("outputs", []) if earlier_version else []:
                    value = f"{earlier['name']}.{output['name']}"
                    options.append((value, f"{value} ({output.get('elem_type')} {_shape(output)})"))
                    if _fits(output, entry):
                        fitting = value
            chosen = str(data.get(f"steps-{index}-in-{entry['name']}") or fitting or options[0][0])
            if chosen not in {value for value, _label in options}:
                options.append((chosen, chosen))
            mapping[entry["name"]] = chosen
            rows.append(
                {
                    "name": entry["name"],
                    "field": f"steps-{index}-in-{entry['name']}",
                    "wants": f"{entry.get('elem_type')} {_shape(entry)}",
                    "options": options,
                    "chosen": chosen,
                    "errors": [],
                }
            )
        outputs = [
            {"name": output["name"], "type": f"{output.get('elem_type')} {_shape(output)}"}
            for output in ((version.signature or {}).get("outputs", []) if version is not None else [])
        ]
        steps.append(
            {
                "index": index,
                "name": name,
                "version": reference,
                "version_obj": version,
                "inputs": mapping,
                "rows": rows,
                "outputs": outputs,
                "errors": {"name": [], "version": [], "inputs": []},
            }
        )
    return {
        "slug": str(data.get("slug") or "").strip(),
        "description": str(data.get("description") or "").strip(),
        "steps": steps,
        "count": len(steps),
        "choices": [(pipelines.reference_of(version), version) for version in choices],
        "errors": {"slug": [], "description": [], "general": []},
        "checked": False,
    }


def spec_of(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": s["name"], "version": s["version"], "inputs": s["inputs"]} for s in state["steps"]]


def place_errors(state: dict[str, Any], error: ValidationError) -> None:
    """A service's errors, each under the builder field it names (``steps[1].inputs.x``, ``slug``...)."""
    for path, messages_ in (error.message_dict if hasattr(error, "error_dict") else {"": error.messages}).items():
        if path in ("slug", "description"):
            state["errors"][path].extend(messages_)
            continue
        if path.startswith("steps[") and "]" in path:
            index_text, _, rest = path[len("steps[") :].partition("]")
            if index_text.isdigit() and int(index_text) < len(state["steps"]):
                step = state["steps"][int(index_text)]
                rest = rest.lstrip(".")
                if rest.startswith("inputs."):
                    row = next((r for r in step["rows"] if r["name"] == rest[len("inputs.") :]), None)
                    if row is not None:
                        row["errors"].extend(messages_)
                        continue
                key = rest if rest in ("name", "version") else "inputs"
                step["errors"][key].extend(messages_)
                continue
        state["errors"]["general"].extend(f"{path}: {message}" if path else message for message in messages_)


def check_state(state: dict[str, Any], user: Any) -> None:
    """Check the builder's pipeline as saving would (``check_pipeline``), marking each problem on its field."""
    state["checked"] = True
    if not any(step["version"] for step in state["steps"]):
        return
    try:
        pipelines.check_pipeline(steps=spec_of(state), outputs=None, actor=user)
    except ValidationError as exc:
        place_errors(state, exc)
    state["has_errors"] = has_errors(state)


def has_errors(state: dict[str, Any]) -> bool:
    if any(state["errors"].values()):
        return True
    return any(any(step["errors"].values()) or any(r["errors"] for r in step["rows"]) for step in state["steps"])


# --- pages -----------------------------------------------------------------------------------------------------


class PipelinePageMixin:
    """``self.get_pipeline()``: the page's pipeline through restrict() (404 when not viewable, 403 unless
    ``pipeline_action`` is allowed)."""

    pipeline_action = "view"

    def get_pipeline(self) -> Pipeline:
        if not hasattr(self, "_pipeline"):
            self._pipeline = lookup.find_allowed(
                Pipeline.objects.filter(organization=self.organization).select_related("organization"),
                self.request.user,
                self.pipeline_action,
                message="You may view the pipeline {obj} but not {action} it.",
                slug=self.kwargs["slug"],
            )
        return self._pipeline

    def may(self, pipeline: Pipeline, action: str) -> bool:
        return lookup.allows(pipeline, self.request.user, action)


def _step_rows(pipeline: Pipeline, user: Any) -> list[dict[str, Any]]:
    versions = pipelines.versions_of([pipeline])
    visible = pipelines.viewable_versions(versions.values(), actor=user)
    rows = []
    for step in pipeline.steps:
        version = versions.get(step.get("version", ""))
        rows.append({"name": step.get("name"), "version": version if version and version.pk in visible else None,
                     "inputs": step.get("inputs", {})})  # fmt: skip
    return rows


class PipelineListView(OrganizationPage):
    """The organization's pipelines: their steps, chained, and their last run."""

    template_name = "inference/pipelines.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        found = (
            Pipeline.objects.restrict(self.request.user, "view")
            .filter(organization=self.organization)
            .select_related("organization", "created_by")
            .order_by("slug")
        )
        page = paginate(self.request, found)
        page.object_list = [{"pipeline": p, "steps": _step_rows(p, self.request.user)} for p in page.object_list]
        context.update(page_obj=page, may_create=self.has_role(Pipeline.access.role_for("change")))
        return context


class PipelineCreateView(OrganizationPage):
    """Members build a pipeline: pick a version per step, map each input to a pipeline input or an earlier step's
    output; every change is checked at once (``org-pipeline-check``) and saving checks again."""

    template_name = "inference/pipeline_form.html"
    organization_action = CREATE_IN

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render_page(state=builder_state(request.GET, request.user))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        state = builder_state(request.POST, request.user)
        try:
            pipeline = pipelines.save_pipeline(
                organization=self.organization,
                slug=state["slug"],
                steps=spec_of(state),
                description=state["description"],
                actor=request.user,
            )
        except ValidationError as exc:
            place_errors(state, exc)
            state["checked"], state["has_errors"] = True, True
            return self.render_page(status=400, state=state)
        messages.success(request, f"Pipeline {pipeline} saved: run it below.")
        return redirect("org-pipeline", self.organization.slug, pipeline.slug)


class PipelineCheckView(PipelineCreateView):
    """The builder checked again after a change (htmx swaps its fragment in; ``action=add`` adds a step)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        state = builder_state(request.POST, request.user, add_step=request.POST.get("action") == "add")
        check_state(state, request.user)
        if request.headers.get("HX-Request"):
            return render(
                request, "inference/_pipeline_builder.html", {"state": state, "organization": self.organization}
            )
        return self.render_page(state=state)


def run_fields(pipeline: Pipeline, data: Any = None) -> list[dict[str, Any]]:
    """The run form: one JSON field per pipeline input, starting with zeros of its shape."""
    fields = []
    for item in pipelines.pipeline_inputs(pipeline):
        entry = {"name": item.name, "elem_type": item.elem_type, "shape": item.shape}
        value = data.get(f"input-{item.name}") if data is not None else None
        fields.append(
            {
                "name": item.name,
                "field": f"input-{item.name}",
                "type": f"{item.elem_type} {_shape(entry)}",
                "value": value if value is not None else (zeros_example(entry) or ""),
                "errors": [],
            }
        )
    return fields


class PipelineDetailView(PipelinePageMixin, OrganizationPage):
    """A pipeline: its steps, what it takes, a run form (members) and its recent runs the caller may see."""

    template_name = "inference/pipeline_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        pipeline = self.get_pipeline()
        runs = (
            Job.objects.restrict(self.request.user, "view")
            .filter(kind=pipelines.PIPELINE_KIND, pipeline_run__pipeline=pipeline)
            .select_related("creator")
            .order_by("-created_at")[:10]
        )
        context.setdefault("fields", run_fields(pipeline))
        context.update(
            pipeline=pipeline,
            steps=_step_rows(pipeline, self.request.user),
            outputs=pipeline.outputs,
            runs=runs,
            may_run=self.may(pipeline, "run"),
        )
        return context


class PipelineRunStartView(PipelineDetailView):
    """POST the run form: the inputs are checked against what the pipeline takes (400 on the field that is wrong,
    nothing written), the run starts as a job, and the browser goes to its page."""

    http_method_names = ["post"]
    pipeline_action = "run"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        pipeline = self.get_pipeline()
        fields = run_fields(pipeline, request.POST)
        inputs: dict[str, Any] = {}
        for field in fields:
            try:
                inputs[field["name"]] = loads_json(field["value"])
            except (NestingTooDeep, InvalidText) as exc:
                field["errors"].append(f"Not usable: {exc}.")
            except ValueError as exc:
                field["errors"].append(f"Not JSON: {exc}. Write the tensor as a nested list, e.g. [[1.0, 2.0]].")
        problems: list[str] = []
        if not any(field["errors"] for field in fields):
            try:
                run_request = pipelines.read_run_request(pipeline, {"inputs": inputs}, actor=request.user)
                job = pipelines.start_pipeline_run(pipeline=pipeline, request=run_request, user=request.user)
            except ValidationError as exc:
                for path, messages_ in exc.message_dict.items():
                    name = path.removeprefix("inputs.").split(".", 1)[0].split("[", 1)[0]
                    target = next((f for f in fields if f["name"] == name), None)
                    if target is not None:
                        target["errors"].extend(messages_)
                    else:
                        problems.extend(f"{path}: {message}" for message in messages_)
            except pipelines.StepNotAllowed as exc:
                if not exc.visible:
                    raise Http404(str(exc)) from exc
                raise PermissionDenied(str(exc)) from exc
            except pipelines.PipelineNotRunnable as exc:
                return self.render_page(status=409, fields=fields, run_problems=[str(exc)])
            else:
                return redirect("org-pipeline-run", self.organization.slug, pipeline.slug, job.uuid)
        return self.render_page(status=400, fields=fields, run_problems=problems)


class PipelineRunView(PipelinePageMixin, OrganizationPage):
    """One run: its progress (reloaded when it ends), each step's version, provider, timings and outputs, the
    pipeline's outputs and their download."""

    template_name = "inference/pipeline_run.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        pipeline = self.get_pipeline()
        job = get_viewable_or_404(
            Job.objects.filter(kind=pipelines.PIPELINE_KIND, pipeline_run__pipeline=pipeline).select_related(
                "organization", "creator"
            ),
            self.request.user,
            uuid=self.kwargs["uuid"],
        )
        run = PipelineRun.objects.filter(job=job).first()
        answer = {"steps": [dict(step) for step in (run.steps if run else [])]}
        pipelines.hide_unviewable_steps(answer, actor=self.request.user)
        outputs = []
        if job.status == "succeeded":
            outputs = [
                {"name": name, **pipelines.tensor_summary(value)} for name, value in pipelines.outputs_of(job).items()
            ]
        context.update(
            pipeline=pipeline,
            job=job,
            steps=answer["steps"],
            outputs=outputs,
            planned=len(job.params.get("steps") or []),
        )
        return context
