"""Pipelines: a chain or small DAG of model versions, each step's outputs mapped onto later steps' inputs,
checked against the versions' signatures when saved and run as one job.

A pipeline's ``steps`` are ``[{"name", "version": "<version uuid>", "inputs": {"<model input>": <reference>}}]``
where a reference is ``input.<name>`` (an input of the pipeline, which the caller sends) or ``<step>.<output>``
(an output of an *earlier* step). ``outputs`` maps the pipeline's output names onto ``<step>.<output>``. Since a
step reads earlier steps only, the steps are already in an order that runs, and no cycle can be written.

``save_pipeline`` validates everything before writing, and reports every problem at once under its field path
(``steps[1].inputs.input_ids: "embed.last_hidden_state" is float32, the input wants int64``): step names,
versions (given as ``owner/name@label``, an alias instead of the label, or a uuid; the caller must be allowed to
``run`` each), references, required inputs, element types and fixed dimensions. The pipeline's own inputs take
their type and shape from the model inputs they feed.

Whoever runs a pipeline must be allowed to run every step's version (``restrict(caller, "run")``, narrowed by a
token's binding), not only the pipeline: ``check_steps_allowed`` refuses the run at its start (404 wording for a
version the caller may not see, 403 for one they may see) and the worker checks again before any step runs.

``start_pipeline_run`` writes the Job (kind ``inference.pipeline``, through ``start_job``) and its ``PipelineRun``
with the validated inputs, and a snapshot of the steps (a later change of the pipeline does not change a queued
run). On the worker, ``run_pipeline`` runs the steps in order through ``load_version``/``run_version``, records
each step's version, provider and milliseconds, stores the outputs as the job's ``outputs.npz`` and tells a waiting
synchronous caller (``completion.notify_finished``). Runs are Job rows, not audit events, as predictions are.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
import uuid as uuid_module
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from apps.audit.services import record_event
from apps.core.errors import Problems, field_error
from apps.core.job_services import JobClaimLost, ProgressReporter, fail_job, finish_job, start_job
from apps.core.jobs import Job, JobStatus
from apps.core.validators import SLUG_VALIDATOR
from apps.inference.completion import notify_finished
from apps.inference.execution import arrays_to_npz, load_version, npz_to_arrays, run_version
from apps.inference.models import Pipeline, PipelineRun
from apps.inference.predictions import refusal_of
from apps.inference.runtime.codecs import (
    ENCODINGS,
    TensorCodecError,
    decode_inputs,
    decode_npz,
    encode_outputs,
    split_outputs,
)
from apps.inference.runtime.signature import shape_text, tensor_type
from apps.inference.runtime.validation import InputValidationError, validate_inputs
from apps.marketplace.models import Alias, ModelVersion, ValidationStatus, VersionStatus

logger = logging.getLogger(__name__)

PIPELINE_KIND = "inference.pipeline"
INPUT = "input"  # references to the pipeline's own inputs are ``input.<name>``
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
NAME_RULE = "1 to 64 letters, digits, “_” or “-”, starting with a letter or “_”"
VERSION_REFERENCE = re.compile(r"^(?P<owner>[^/@\s]+)/(?P<name>[^/@\s]+)@(?P<label>[^/@\s]+)$")
STEP_FIELDS = frozenset({"name", "version", "inputs"})
MAX_STEPS = 16
RUN_FIELDS = frozenset({"inputs", "encoding", "timeout"})
OUTPUTS_FILE = "outputs.npz"
DEFAULT_TIME_LIMIT = 120


class PipelineNotRunnable(Exception):
    """A step's version cannot run any more (deleted, yanked, no signature): a 409 with the reason."""


# --- validation --------------------------------------------------------------------------------------------------


def _shape_conflict(source: Any, target: Any) -> str | None:
    """Why a tensor of shape ``source`` cannot feed an input of shape ``target`` (ranks or fixed dimensions)."""
    if source is None or target is None:
        return None
    if len(source) != len(target):
        return f"rank {len(source)} against rank {len(target)}"
    for axis, (have, want) in enumerate(zip(source, target, strict=True)):
        if isinstance(have, int) and isinstance(want, int) and have != want:
            return f"dimension {axis}: {have} against {want}"
    return None


def _merged_shape(first: Any, second: Any) -> Any:
    """The more precise of two compatible shapes, axis by axis (a fixed size wins over a symbolic one)."""
    if first is None:
        return second
    if second is None:
        return first
    return [a if isinstance(a, int) else b if isinstance(b, int) else a for a, b in zip(first, second, strict=True)]


def reference_of(version: ModelVersion) -> str:
    """How the API names a version: ``owner/name@label``."""
    return f"{version.model.organization.slug}/{version.model.name}@{version.label}"


def _find_version(reference: str, *, actor: Any, bound_organization: int | None) -> ModelVersion | None:
    visible = ModelVersion.objects.restrict(actor, "view", within_organization=bound_organization).select_related(
        "model__organization"
    )
    try:
        as_uuid = uuid_module.UUID(reference)
    except ValueError:
        as_uuid = None
    if as_uuid is not None:
        return visible.filter(uuid=as_uuid).first()
    match = VERSION_REFERENCE.match(reference)
    if match is None:
        return None
    of_model = visible.filter(model__organization__slug=match["owner"], model__name=match["name"])
    found = of_model.filter(label=match["label"]).first()
    if found is None:
        alias = Alias.objects.filter(
            model__organization__slug=match["owner"], model__name=match["name"], name=match["label"]
        ).first()
        if alias is not None:
            found = of_model.filter(pk=alias.version_id).first()
    return found


def resolve_version(
    reference: Any, *, actor: Any, path: str, problems: Problems, bound_organization: int | None = None
) -> ModelVersion | None:
    """The version ``reference`` names (``owner/name@label``, ``owner/name@alias`` or a uuid), if the caller may
    run it and it can run; otherwise None, with the reason recorded under ``path``."""
    if not isinstance(reference, str) or not reference.strip():
        problems.add(path, "Required: the version to run, written “owner/name@label”.", "required")
        return None
    reference = reference.strip()
    version = _find_version(reference, actor=actor, bound_organization=bound_organization)
    if version is None:
        problems.add(
            path,
            f"There is no version “{reference}” that you may see; write it “owner/name@label” (or a version's uuid).",
            "no_such_version",
        )
        return None
    runnable = ModelVersion.objects.restrict(actor, "run", within_organization=bound_organization)
    if not runnable.filter(pk=version.pk).exists():
        problems.add(path, f"You may view {reference_of(version)} but not run it.", "not_allowed")
        return None
    if version.status == VersionStatus.YANKED:
        problems.add(
            path, f"{reference_of(version)} was yanked ({version.yank_reason}); choose another version.", "yanked"
        )
        return None
    if version.validation_status != ValidationStatus.PASSED or not (version.signature or {}).get("inputs"):
        problems.add(
            path,
            f"{reference_of(version)} has not passed validation, so it has no signature to check the pipeline "
            "against; validate it first.",
            "not_validated",
        )
        return None
    return version


@dataclass
class PipelineInput:
    """An input of the pipeline: its type and shape, from the first model input it feeds."""

    name: str
    elem_type: str
    shape: Any
    feeds: list[str] = field(default_factory=list)


@dataclass
class CheckedPipeline:
    """A pipeline that passed validation: steps as stored (version uuids), outputs, and what it takes."""

    steps: list[dict[str, Any]]
    outputs: dict[str, str]
    inputs: list[PipelineInput]
    versions: dict[str, ModelVersion]

    def signature(self) -> dict[str, Any]:
        """The pipeline's inputs as a model signature, to validate a run's inputs with ``validate_inputs``."""
        return {
            "inputs": [{"name": item.name, "elem_type": item.elem_type, "shape": item.shape} for item in self.inputs]
        }


def _check_reference(
    reference: Any,
    *,
    path: str,
    index: int,
    steps_before: dict[str, tuple[int, ModelVersion | None]],
    later_steps: set[str],
    problems: Problems,
) -> tuple[str, str] | None:
    """``(source, name)`` of a well-formed reference: ``("input", "<name>")`` or ``("<step>", "<output>")``."""
    if not isinstance(reference, str) or "." not in reference:
        problems.add(
            path,
            f"Expected “input.<name>” or “<earlier step>.<output>”, received {reference!r}.",
            "invalid_reference",
        )
        return None
    source, _, name = reference.partition(".")
    if not name:
        problems.add(path, f"“{reference}” names no output after the dot.", "invalid_reference")
        return None
    if source == INPUT:
        if not NAME_PATTERN.match(name):
            problems.add(path, f"“{name}” is not a valid pipeline input name: {NAME_RULE}.", "invalid_name")
            return None
        return INPUT, name
    if source in steps_before:
        return source, name
    if source in later_steps:
        problems.add(
            path,
            f"“{source}” runs after step {index}; a step reads the pipeline's inputs and earlier steps' outputs only "
            "(so a pipeline has no cycles): move it earlier.",
            "later_step",
        )
    else:
        known = ", ".join(["input", *steps_before]) or "input"
        problems.add(
            path, f"There is no earlier step “{source}”; references start with one of: {known}.", "no_such_step"
        )
    return None


def _output_entry(version: ModelVersion, name: str) -> dict[str, Any] | None:
    return next((entry for entry in (version.signature or {}).get("outputs", []) if entry["name"] == name), None)


def _names(entries: list[dict[str, Any]]) -> str:
    return ", ".join(entry["name"] for entry in entries) or "(none)"


def check_pipeline(*, steps: Any, outputs: Any, actor: Any, bound_organization: int | None = None) -> CheckedPipeline:
    """Validate a pipeline's steps and outputs against its versions' signatures (see the module docstring);
    a Django ``ValidationError`` naming each field path that is wrong."""
    problems = Problems()
    if not isinstance(steps, list) or not steps:
        raise field_error("steps", "Required: a list of steps, each {name, version, inputs}.", code="required")
    if len(steps) > MAX_STEPS:
        raise field_error("steps", f"A pipeline has at most {MAX_STEPS} steps; this one has {len(steps)}.", "too_many")
    names = [step.get("name") if isinstance(step, dict) else None for step in steps]
    stored: list[dict[str, Any]] = []
    versions: dict[str, ModelVersion] = {}
    inputs: dict[str, PipelineInput] = {}
    seen: dict[str, tuple[int, ModelVersion | None]] = {}
    for index, step in enumerate(steps):
        prefix = f"steps[{index}]"
        if not isinstance(step, dict):
            problems.add(prefix, "Expected an object {name, version, inputs}.", "invalid")
            continue
        for unknown in sorted(set(step) - STEP_FIELDS):
            problems.add(f"{prefix}.{unknown}", "Unknown field; a step has name, version and inputs.", "unknown_field")
        name = step.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            problems.add(f"{prefix}.name", f"Required: a step name of {NAME_RULE}.", "invalid_name")
            name = None
        elif name == INPUT:
            problems.add(f"{prefix}.name", "“input” names the pipeline's inputs; call the step otherwise.", "reserved")
            name = None
        elif name in seen:
            problems.add(
                f"{prefix}.name", f"Step {seen[name][0]} is already called “{name}”; names are unique.", "unique"
            )
            name = None
        version = resolve_version(
            step.get("version"),
            actor=actor,
            path=f"{prefix}.version",
            problems=problems,
            bound_organization=bound_organization,
        )
        mapping = step.get("inputs")
        later = {n for n in names[index + 1 :] if isinstance(n, str)}
        if not isinstance(mapping, dict):
            problems.add(f"{prefix}.inputs", "Required: an object of model input name to reference.", "required")
            mapping = {}
        if version is not None:
            _check_step_inputs(prefix, index, version, mapping, seen, later, inputs, problems)
            versions[str(version.uuid)] = version
        else:
            for model_input, reference in mapping.items():  # the references can still be checked for form
                _check_reference(
                    reference,
                    path=f"{prefix}.inputs.{model_input}",
                    index=index,
                    steps_before=seen,
                    later_steps=later,
                    problems=problems,
                )
        if name is not None:
            seen[name] = (index, version)
        stored.append(
            {
                "name": name or "",
                "version": str(version.uuid) if version is not None else "",
                "inputs": {str(k): v for k, v in mapping.items()},
            }
        )
    checked_outputs = _check_outputs(outputs, seen, stored, problems)
    problems.raise_if_any()
    return CheckedPipeline(stored, checked_outputs, list(inputs.values()), versions)


def _check_step_inputs(
    prefix: str,
    index: int,
    version: ModelVersion,
    mapping: dict[str, Any],
    seen: dict[str, tuple[int, ModelVersion | None]],
    later: set[str],
    inputs: dict[str, PipelineInput],
    problems: Problems,
) -> None:
    declared = {entry["name"]: entry for entry in version.signature.get("inputs", [])}
    listing = _names(list(declared.values()))
    for model_input in mapping:
        if model_input not in declared:
            problems.add(
                f"{prefix}.inputs.{model_input}",
                f"{reference_of(version)} has no input “{model_input}”; its inputs are {listing}.",
                "unknown_input",
            )
    for model_input, entry in declared.items():
        path = f"{prefix}.inputs.{model_input}"
        if model_input not in mapping:
            problems.add(
                path,
                f"Required: {reference_of(version)} needs this input; map it to “input.<name>” or "
                "“<earlier step>.<output>”.",
                "missing_input",
            )
            continue
        reference = mapping[model_input]
        parsed = _check_reference(
            reference, path=path, index=index, steps_before=seen, later_steps=later, problems=problems
        )
        if parsed is None:
            continue
        wanted_type = tensor_type(entry.get("elem_type"))
        if wanted_type is None:
            problems.add(
                path, f"The input is a {entry.get('elem_type')}, not a tensor; it cannot be fed.", "unsupported"
            )
            continue
        source, name = parsed
        if source == INPUT:
            _bind_pipeline_input(path, name, wanted_type, entry.get("shape"), inputs, problems)
            continue
        source_version = seen[source][1]
        if source_version is None:
            continue  # that step's version was refused already: nothing to compare with
        output = _output_entry(source_version, name)
        if output is None:
            outputs = (source_version.signature or {}).get("outputs", [])
            problems.add(
                path,
                f"Step “{source}” ({reference_of(source_version)}) has no output “{name}”; its outputs are "
                f"{_names(outputs)}.",
                "no_such_output",
            )
            continue
        have_type = tensor_type(output.get("elem_type"))
        if have_type is None:
            problems.add(
                path,
                f'"{reference}" is a {output.get("elem_type")}, not a tensor; it cannot feed an input.',
                "wrong_type",
            )
            continue
        if have_type != wanted_type:
            problems.add(path, f'"{reference}" is {have_type}, the input wants {wanted_type}', "wrong_type")
            continue
        conflict = _shape_conflict(output.get("shape"), entry.get("shape"))
        if conflict:
            problems.add(
                path,
                f'"{reference}" has shape {shape_text(output.get("shape"))}, the input wants '
                f"{shape_text(entry.get('shape'))} ({conflict})",
                "wrong_shape",
            )


def _bind_pipeline_input(
    path: str, name: str, elem_type: str, shape: Any, inputs: dict[str, PipelineInput], problems: Problems
) -> None:
    known = inputs.get(name)
    if known is None:
        inputs[name] = PipelineInput(name, elem_type, list(shape) if shape is not None else None, [path])
        return
    first = known.feeds[0]
    if known.elem_type != elem_type:
        problems.add(
            path,
            f'"input.{name}" also feeds {first}, which wants {known.elem_type}; this input wants {elem_type}',
            "wrong_type",
        )
        return
    conflict = _shape_conflict(known.shape, shape)
    if conflict:
        problems.add(
            path,
            f'"input.{name}" also feeds {first}, which wants shape {shape_text(known.shape)}; this input wants '
            f"{shape_text(shape)} ({conflict})",
            "wrong_shape",
        )
        return
    known.shape = _merged_shape(known.shape, shape)
    known.feeds.append(path)


def _check_outputs(
    outputs: Any,
    seen: dict[str, tuple[int, ModelVersion | None]],
    stored: list[dict[str, Any]],
    problems: Problems,
) -> dict[str, str]:
    if outputs in (None, {}):
        # By default the pipeline answers every output of its last step.
        last = stored[-1]["name"] if stored else ""
        version = seen.get(last, (0, None))[1]
        if version is None:
            return {}
        return {entry["name"]: f"{last}.{entry['name']}" for entry in version.signature.get("outputs", [])}
    if not isinstance(outputs, dict):
        problems.add("outputs", "Expected an object of output name to “<step>.<output>”.", "invalid")
        return {}
    checked: dict[str, str] = {}
    for name, reference in outputs.items():
        path = f"outputs.{name}"
        if not NAME_PATTERN.match(str(name)):
            problems.add(path, f"Not a valid output name: {NAME_RULE}.", "invalid_name")
            continue
        if not isinstance(reference, str) or "." not in reference:
            problems.add(path, f"Expected “<step>.<output>”, received {reference!r}.", "invalid_reference")
            continue
        source, _, output = reference.partition(".")
        if source == INPUT:
            problems.add(path, "An output names a step's output (“<step>.<output>”), not a pipeline input.", "invalid")
            continue
        if source not in seen:
            problems.add(
                path, f"There is no step “{source}”; the steps are {', '.join(seen) or '(none)'}.", "no_such_step"
            )
            continue
        version = seen[source][1]
        if version is not None and _output_entry(version, output) is None:
            problems.add(
                path,
                f"Step “{source}” ({reference_of(version)}) has no output “{output}”; its outputs are "
                f"{_names(version.signature.get('outputs', []))}.",
                "no_such_output",
            )
            continue
        checked[str(name)] = reference
    return checked


# --- saving ------------------------------------------------------------------------------------------------------


def save_pipeline(
    *,
    organization: Any,
    slug: str,
    steps: Any,
    outputs: Any = None,
    actor: Any,
    description: str | None = None,
    pipeline: Pipeline | None = None,
    bound_organization: int | None = None,
) -> Pipeline:
    """Create the organization's pipeline ``slug``, or change ``pipeline``, after ``check_pipeline`` passed;
    records ``pipeline.created`` or ``pipeline.changed``. Versions in ``steps`` are stored by uuid."""
    if pipeline is None:
        try:
            SLUG_VALIDATOR(slug)
        except Exception as exc:
            raise field_error("slug", " ".join(getattr(exc, "messages", [str(exc)])), code="invalid_slug") from None
        if Pipeline.objects.filter(organization=organization, slug=slug).exists():
            raise field_error("slug", f"{organization.slug} already has a pipeline “{slug}”.", code="unique")
    if description is not None and len(description) > 500:
        raise field_error("description", "At most 500 characters.", code="max_length")
    checked = check_pipeline(steps=steps, outputs=outputs, actor=actor, bound_organization=bound_organization)
    metadata = {
        "steps": [{**step, "reference": reference_of(checked.versions[step["version"]])} for step in checked.steps],
        "outputs": checked.outputs,
    }
    try:
        with transaction.atomic():
            if pipeline is None:
                pipeline = Pipeline.objects.create(
                    organization=organization,
                    slug=slug,
                    description=description or "",
                    steps=checked.steps,
                    outputs=checked.outputs,
                    created_by=actor if getattr(actor, "is_authenticated", False) else None,
                )
                action = "pipeline.created"
            else:
                pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
                pipeline.steps, pipeline.outputs = checked.steps, checked.outputs
                if description is not None:
                    pipeline.description = description
                pipeline.save(update_fields=["steps", "outputs", "description", "updated_at"])
                action = "pipeline.changed"
            record_event(
                action=action, organization=pipeline.organization_id, actor=actor, target=pipeline, metadata=metadata
            )
    except IntegrityError:
        raise field_error("slug", f"{organization.slug} already has a pipeline “{slug}”.", code="unique") from None
    return pipeline


def delete_pipeline(*, pipeline: Pipeline, actor: Any) -> None:
    """Delete a pipeline (its runs' jobs stay, their ``PipelineRun`` rows go with it); records ``pipeline.deleted``."""
    with transaction.atomic():
        record_event(
            action="pipeline.deleted",
            organization=pipeline.organization_id,
            actor=actor,
            target=pipeline,
            metadata={"steps": pipeline.steps, "outputs": pipeline.outputs},
        )
        pipeline.delete()


def versions_of(pipelines: list[Pipeline]) -> dict[str, ModelVersion]:
    """The versions the pipelines' steps use, by uuid, in one query (for listing them)."""
    uuids = {step.get("version") for pipeline in pipelines for step in pipeline.steps if step.get("version")}
    found = ModelVersion.objects.filter(uuid__in=uuids).select_related("model__organization")
    return {str(version.uuid): version for version in found}


def viewable_versions(versions: Any, *, actor: Any, bound_organization: int | None = None) -> set[int]:
    """Which of ``versions`` the caller may view (one query): a pipeline or a run names only those. A pipeline's
    author may use a version of another organization they were granted; the pipeline's other viewers see that step
    without its version's name."""
    pks = {version.pk for version in versions if version is not None}
    if not pks:
        return set()
    visible = ModelVersion.objects.restrict(actor, "view", within_organization=bound_organization)
    return set(visible.filter(pk__in=pks).values_list("pk", flat=True))


def hide_unviewable_steps(answer: dict[str, Any], *, actor: Any, bound_organization: int | None = None) -> None:
    """In a run's answer, blank the version (uuid and ``owner/name@label``) of each step the caller may not view."""
    steps = answer.get("steps") or []
    uuids = {step.get("version") for step in steps if step.get("version")}
    if not uuids:
        return
    found = list(ModelVersion.objects.filter(uuid__in=uuids))
    visible = viewable_versions(found, actor=actor, bound_organization=bound_organization)
    shown = {str(version.uuid) for version in found if version.pk in visible}
    for step in steps:
        if step.get("version") and step["version"] not in shown:
            step["version"], step["reference"] = None, None
            step.pop("outputs", None)


def pipeline_inputs(pipeline: Pipeline, versions: dict[str, ModelVersion] | None = None) -> list[PipelineInput]:
    """What the pipeline takes (each input's type and shape), from its versions' signatures as stored now."""
    versions = versions if versions is not None else versions_of([pipeline])
    inputs: dict[str, PipelineInput] = {}
    problems = Problems()
    for index, step in enumerate(pipeline.steps):
        version = versions.get(step.get("version", ""))
        if version is None:
            continue
        declared = {entry["name"]: entry for entry in (version.signature or {}).get("inputs", [])}
        for model_input, reference in step.get("inputs", {}).items():
            entry = declared.get(model_input)
            if entry is None or not isinstance(reference, str) or not reference.startswith(f"{INPUT}."):
                continue
            elem_type = tensor_type(entry.get("elem_type"))
            if elem_type is not None:
                name = reference.removeprefix(f"{INPUT}.")
                _bind_pipeline_input(
                    f"steps[{index}].inputs.{model_input}", name, elem_type, entry.get("shape"), inputs, problems
                )
    return list(inputs.values())


# --- starting a run ----------------------------------------------------------------------------------------------


@dataclass
class RunRequest:
    """A run's validated inputs (by pipeline input name) and how its outputs are to be encoded."""

    arrays: dict[str, np.ndarray]
    encoding: str = "json"


class StepNotAllowed(PipelineNotRunnable):
    """The caller may not run a step's version: ``visible`` says whether they may see it (403) or not (404)."""

    def __init__(self, message: str, *, visible: bool) -> None:
        super().__init__(message)
        self.visible = visible


def _step_where(index: int, step: dict[str, Any]) -> str:
    return f"Step “{step.get('name')}” (steps[{index}])"


def check_steps_allowed(
    steps: list[dict[str, Any]],
    versions: dict[str, ModelVersion],
    *,
    actor: Any,
    bound_organization: int | None = None,
) -> None:
    """Every step's version must pass ``restrict(actor, "run")`` (narrowed by a token's binding): the first one that
    does not raises ``StepNotAllowed``, worded as a 404 when the caller may not see the version, as a 403 when they
    may. A pipeline's steps are whatever its author could run; whoever runs it must be allowed to run each of them
    (DESIGN.md, "Access control"), at run start and again on the worker. Two queries, whatever the steps."""
    uuids = [version.pk for version in versions.values()]
    runnable = set(
        ModelVersion.objects.restrict(actor, "run", within_organization=bound_organization)
        .filter(pk__in=uuids)
        .values_list("pk", flat=True)
    )
    if len(runnable) == len(set(uuids)):
        return
    visible = set(
        ModelVersion.objects.restrict(actor, "view", within_organization=bound_organization)
        .filter(pk__in=uuids)
        .values_list("pk", flat=True)
    )
    for index, step in enumerate(steps):
        version = versions.get(step.get("version", ""))
        if version is None or version.pk in runnable:
            continue
        where = _step_where(index, step)
        if version.pk in visible:
            raise StepNotAllowed(f"{where}: you may view {reference_of(version)} but not run it.", visible=True)
        raise StepNotAllowed(
            f"{where} runs a model version that does not exist or that you may not see; the pipeline's author may "
            "run it, you may not. Ask for access, or change the pipeline.",
            visible=False,
        )


def _runnable_versions(
    pipeline: Pipeline, *, actor: Any, bound_organization: int | None = None
) -> dict[str, ModelVersion]:
    """The pipeline's versions by uuid, when the caller may run every step and each can run now; else
    ``StepNotAllowed`` (the caller may not run one) or ``PipelineNotRunnable`` (deleted, yanked, not validated)."""
    versions = versions_of([pipeline])
    check_steps_allowed(pipeline.steps, versions, actor=actor, bound_organization=bound_organization)
    for index, step in enumerate(pipeline.steps):
        version = versions.get(step.get("version", ""))
        where = _step_where(index, step)
        if version is None or version.model.is_deleted:
            raise PipelineNotRunnable(f"{where}: its version no longer exists; change the pipeline.")
        if version.status == VersionStatus.YANKED:
            raise PipelineNotRunnable(f"{where}: {reference_of(version)} was yanked; change the pipeline.")
        if version.validation_status != ValidationStatus.PASSED:
            raise PipelineNotRunnable(f"{where}: {reference_of(version)} has not passed validation.")
    return versions


def read_run_request(
    pipeline: Pipeline,
    body: Any = None,
    *,
    actor: Any,
    bound_organization: int | None = None,
    npz: bytes | None = None,
    encoding: str = "json",
) -> RunRequest:
    """Validate a run's inputs against what the pipeline takes: a JSON body ``{"inputs": {<pipeline input>:
    tensor}, "encoding", "timeout"}`` (tensors as the predict API takes them) or ``.npz`` bytes. Errors name the
    field (``inputs.features: expected float32, ...``); ``StepNotAllowed`` when ``actor`` may not run a step,
    ``PipelineNotRunnable`` when a step cannot run."""
    versions = _runnable_versions(pipeline, actor=actor, bound_organization=bound_organization)
    signature = {
        "inputs": [
            {"name": item.name, "elem_type": item.elem_type, "shape": item.shape}
            for item in pipeline_inputs(pipeline, versions)
        ]
    }
    if npz is not None:
        raw_arrays = None
    else:
        if not isinstance(body, dict):
            raise field_error("non_field_errors", "Send a JSON object with an “inputs” object.", code="invalid")
        unknown = sorted(set(body) - RUN_FIELDS)
        if unknown:
            raise field_error(
                unknown[0], f"Unknown field; a run takes {', '.join(sorted(RUN_FIELDS))}.", code="unknown_field"
            )
        encoding = body.get("encoding", "json")
        raw_arrays = body.get("inputs")
        if not isinstance(raw_arrays, dict) or not raw_arrays:
            listing = ", ".join(entry["name"] for entry in signature["inputs"])
            raise field_error("inputs", f"Required: an object of the pipeline's inputs ({listing}).", code="required")
    if encoding not in ENCODINGS:
        raise field_error(
            "encoding", f"“{encoding}” is not an encoding; use one of {', '.join(ENCODINGS)}.", code="invalid_choice"
        )
    try:
        if npz is not None:
            arrays = decode_npz(npz, max_bytes=settings.INFERENCE_MAX_REQUEST_BYTES, field="inputs")
        else:
            arrays = decode_inputs(raw_arrays, max_bytes=settings.INFERENCE_MAX_REQUEST_BYTES)
        arrays = validate_inputs(signature, arrays)
    except (TensorCodecError, InputValidationError) as exc:
        raise refusal_of(exc) from exc
    return RunRequest(arrays=arrays, encoding=encoding)


def start_pipeline_run(
    *,
    pipeline: Pipeline,
    request: RunRequest,
    user: Any,
    bound_organization: int | None = None,
    time_limit: int | None = None,
) -> Job:
    """Write the run's Job (on the pipeline's organization, through ``start_job``) and ``PipelineRun`` and send it on
    commit, after checking again that ``user`` may run every step (``StepNotAllowed`` otherwise). The token binding
    the caller acted under goes with the job, so that the worker checks the same rights."""
    from apps.inference.routing import queue_for

    versions = versions_of([pipeline])
    check_steps_allowed(pipeline.steps, versions, actor=user, bound_organization=bound_organization)
    with transaction.atomic():
        job = start_job(
            kind=PIPELINE_KIND,
            organization=pipeline.organization,
            creator=user,
            params={
                "pipeline": str(pipeline.uuid),
                "slug": pipeline.slug,
                "encoding": request.encoding,
                # A snapshot: a change of the pipeline after this does not change what this run runs.
                "steps": pipeline.steps,
                "outputs": pipeline.outputs,
                "bound_organization": bound_organization,
            },
            queue=queue_for("auto"),
            max_attempts=2,
            time_limit=time_limit or DEFAULT_TIME_LIMIT,
        )
        run = PipelineRun.objects.create(
            job=job, pipeline=pipeline, inputs=arrays_to_npz(request.arrays), created_at=job.created_at
        )
    job.pipeline_run = run
    return job


# --- running (the worker side) -----------------------------------------------------------------------------------


SUMMARY_VALUES = 8


def tensor_summary(value: Any) -> dict[str, Any]:
    """What a run's page shows of one step's output: its type, shape and first values (4 significant digits)."""
    if not isinstance(value, np.ndarray):
        return {"dtype": type(value).__name__, "shape": None, "head": [str(value)[:60]], "size": 1}
    flat = value.reshape(-1)[:SUMMARY_VALUES]
    if value.dtype.kind in "fc":
        head: list[Any] = [float(f"{float(item):.4g}") for item in flat.real]
    elif value.dtype.kind in "iub":
        head = [int(item) for item in flat]
    else:
        head = [str(item)[:60] for item in flat]
    return {"dtype": str(value.dtype), "shape": list(value.shape), "head": head, "size": int(value.size)}


class StepFailed(Exception):
    """A step could not run; the message names it (``steps[1] (argmax): ...``)."""

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, memory: bool = False) -> None:
        super().__init__(message)
        self.fields = fields
        self.memory = memory


def _check_still_allowed(
    job: Job, run: PipelineRun, steps: list[dict[str, Any]], versions: dict[str, ModelVersion]
) -> None:
    """The worker's re-check before any step runs: whoever started the run may still run the pipeline and every
    step's version (a grant or a membership may have ended since the run was queued); ``StepFailed`` otherwise."""
    actor = job.creator
    if actor is None or not actor.is_active:
        raise StepFailed("The person who started this run no longer has an active account; nothing ran.")
    bound = (job.params or {}).get("bound_organization")
    if not Pipeline.objects.restrict(actor, "run", within_organization=bound).filter(pk=run.pipeline_id).exists():
        raise StepFailed("You may no longer run this pipeline; nothing ran.")
    try:
        check_steps_allowed(steps, versions, actor=actor, bound_organization=bound)
    except StepNotAllowed as exc:
        raise StepFailed(f"{exc} Nothing ran.") from exc


def _run_steps(job: Job, run: PipelineRun, progress: ProgressReporter, timings: list[dict]) -> dict[str, Any]:
    from apps.inference.serving import memory_failure, memory_message

    steps: list[dict[str, Any]] = job.params.get("steps") or []
    wanted: dict[str, str] = job.params.get("outputs") or {}
    values: dict[str, Any] = {f"{INPUT}.{name}": array for name, array in npz_to_arrays(run.inputs).items()}
    versions = {
        str(version.uuid): version
        for version in ModelVersion.objects.select_related("model__organization").filter(
            uuid__in=[step["version"] for step in steps]
        )
    }
    _check_still_allowed(job, run, steps, versions)
    deadline = time.monotonic() + float(job.time_limit)
    for index, step in enumerate(steps):
        name = step["name"]
        where = f"steps[{index}] ({name})"
        version = versions.get(step["version"])
        if version is None:
            raise StepFailed(f"{where}: its version no longer exists.")
        started = time.perf_counter()
        try:
            loaded = load_version(version)
            feed = {model_input: values[reference] for model_input, reference in step["inputs"].items()}
            feed = validate_inputs(version.signature or {}, feed, field=f"steps[{index}].inputs")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StepFailed(f"{where}: the pipeline ran past its time limit of {job.time_limit} s.")
            ran = run_version(loaded, feed, time_limit=remaining)
        except StepFailed:
            raise
        except InputValidationError as exc:
            raise StepFailed(f"{where}: {exc}", fields=exc.errors) from exc
        except Exception as exc:
            if memory_failure(exc):
                raise StepFailed(f"{where}: {memory_message()}", memory=True) from exc
            raise StepFailed(f"{where} on {reference_of(version)} failed: {str(exc) or type(exc).__name__}") from exc
        for output, value in ran.outputs.items():
            values[f"{name}.{output}"] = value
        timings.append(
            {
                "name": name,
                "version": str(version.uuid),
                "reference": reference_of(version),
                "provider": ran.provider,
                "load_ms": round(loaded.load_ms, 3),
                "run_ms": ran.timings["run_ms"],
                "ms": round((time.perf_counter() - started) * 1000, 3),
                "outputs": {output: tensor_summary(value) for output, value in ran.outputs.items()},
            }
        )
        progress((index + 1) / (len(steps) + 1), f"step {index + 1} of {len(steps)} ({name}) done")
    return {output: values[reference] for output, reference in wanted.items()}


def run_pipeline(job: Job) -> str:
    """Run a claimed pipeline job's steps in order and record the outcome for this attempt: per-step timings on
    the ``PipelineRun``, outputs as the job's ``outputs.npz``, a summary as its result; the status (or "lost")."""
    from apps.inference.serving import replace_this_process

    started = time.perf_counter()
    run = PipelineRun.objects.filter(job=job).first()
    if run is None:  # the pipeline was deleted (and its runs with it) while this one was queued
        error = "The pipeline was deleted before this run started."
        if fail_job(job, error=error):
            notify_finished(job.uuid, {"status": JobStatus.FAILED, "error": error, "steps": []})
            return JobStatus.FAILED
        return "lost"
    progress = ProgressReporter(job, interval=1.0)
    timings: list[dict[str, Any]] = []
    try:
        outputs = _run_steps(job, run, progress, timings)
    except JobClaimLost:
        return "lost"
    except StepFailed as exc:
        recorded = _record_failure(job, run, str(exc), timings, fields=exc.fields, trace=traceback.format_exc())
        if exc.memory:
            replace_this_process()
        return JobStatus.FAILED if recorded else "lost"
    except Exception as exc:  # a bug, not the model: recorded like any job failure
        logger.exception("Pipeline run %s failed", job.uuid)
        error = f"{type(exc).__name__}: {exc}"
        return JobStatus.FAILED if _record_failure(job, run, error, timings, trace=traceback.format_exc()) else "lost"
    tensors, others = split_outputs(outputs)
    payload = arrays_to_npz(tensors)
    job.result_file.save(OUTPUTS_FILE, ContentFile(payload), save=False)
    result = {
        "pipeline": job.params.get("slug"),
        "steps": timings,
        "outputs": {name: {"dtype": str(value.dtype), "shape": list(value.shape)} for name, value in tensors.items()},
        "total_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if others:
        result["other_outputs"] = others
    with transaction.atomic():
        status = finish_job(job, result)
        if status:
            PipelineRun.objects.filter(pk=run.pk).update(steps=timings)
    if not status:
        return "lost"
    notify_finished(job.uuid, {"status": status, "result": result}, payload)
    return status


def _record_failure(
    job: Job, run: PipelineRun, error: str, timings: list[dict], *, fields: dict | None = None, trace: str = ""
) -> bool:
    with transaction.atomic():
        recorded = fail_job(job, error=error, traceback=trace)
        if recorded:
            PipelineRun.objects.filter(pk=run.pk).update(steps=timings)
    if recorded:
        notify_finished(
            job.uuid, {"status": JobStatus.FAILED, "error": error, "error_fields": fields, "steps": timings}
        )
    return recorded


# --- answers -----------------------------------------------------------------------------------------------------


def outputs_of(job: Job) -> dict[str, np.ndarray]:
    """The tensors a finished run stored (its ``outputs.npz``)."""
    if not job.result_file.name:
        return {}
    with default_storage.open(job.result_file.name, "rb") as stored:
        return npz_to_arrays(stored.read())


def answer_of_run(job: Job, outcome: dict[str, Any] | None = None, payload: bytes = b"") -> dict[str, Any]:
    """The API's view of a pipeline run: status, outputs (in the run's encoding), each step's version, provider
    and milliseconds, the error when it failed."""
    outcome = outcome or {}
    status = outcome.get("status", job.status)
    params = job.params or {}
    answer: dict[str, Any] = {
        "job": str(job.uuid),
        "status": status,
        "pipeline": f"{job.organization.slug}/{params.get('slug', '')}",
        "created_at": job.created_at,
    }
    if status == JobStatus.SUCCEEDED:
        result = outcome.get("result") if "result" in outcome else job.result or {}
        result = result or {}
        tensors: dict[str, Any] = npz_to_arrays(payload) if payload else outputs_of(job)
        tensors.update(result.get("other_outputs") or {})
        answer.update(
            outputs=encode_outputs(tensors, encoding=params.get("encoding", "json")),
            steps=result.get("steps", []),
            total_ms=result.get("total_ms"),
        )
    elif status == JobStatus.FAILED:
        answer["error"] = outcome.get("error", job.error)
        if outcome.get("error_fields"):
            answer["errors"] = outcome["error_fields"]
        steps = outcome.get("steps")
        if steps is None:
            run = PipelineRun.objects.filter(job=job).only("steps").first()
            steps = run.steps if run else []
        answer["steps"] = steps
    return answer
