"""Predictions: read a request's inputs, write the job, send it, wait for it (synchronous calls), answer.

``start_prediction`` writes the Job and its ``InferenceJob`` in one transaction and sends the task when it
commits (DESIGN.md, "Background work"); a synchronous caller then waits on ``completion.wait_finished`` up to
its timeout and answers the result, or 202 with the job's URL. Tensor inputs are decoded and validated against
the version's signature here, before anything is written, so a bad input is a 400 naming the input and the
reason; readable inputs (text, images) are checked for their form here and pre-processed on the worker, where
the version's tokenizer and manifest are.

Predictions are not audit events (the Job rows are their record; "job.created" is for work people start by
hand). Whose a prediction is (DESIGN.md, "Inference"), ``prediction_organization``: one on a deployment belongs to
the deployment's organization (its admins see it, it counts against that organization); a direct run of a version
belongs to the organization the caller acts for (the token's bound organization, else the caller's personal one);
the caller always sees their own. An answer names the model and version only to a caller who may view the model
(``answer_of(..., shows_model=False)``: a public deployment of a private model answers with its own name and
revision instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from apps.accounts.services import acting_organization  # re-exported: whom a run counts against
from apps.core.errors import field_error, field_errors
from apps.core.job_services import start_job
from apps.core.jobs import Job, JobStatus
from apps.inference.completion import NOBODY_WAITS
from apps.inference.execution import pack_tensors, unpack_tensors
from apps.inference.models import Device, InferenceJob, Provider
from apps.inference.runtime.codecs import ENCODINGS, TensorCodecError, decode_inputs, decode_npz, encode_outputs
from apps.inference.runtime.validation import InputValidationError, batch_axis, validate_inputs
from apps.marketplace.models import ModelVersion, ValidationStatus

PREDICT_KIND = "inference.predict"
BATCHED_PREDICT_KIND = "inference.predict_batched"
READABLE_KEYS = frozenset({"text", "image"})
REQUEST_FIELDS = frozenset(
    {"inputs", "encoding", "outputs", "timeout", "webhook_url", "parameters", "device", "provider"}
)


class NotRunnable(Exception):
    """The version cannot run (not validated, no signature): a 409 with the reason."""


@dataclass
class PredictionInput:
    """A request's inputs, ready to store: validated tensors, or readable inputs for the worker to process."""

    arrays: dict[str, np.ndarray] | None = None
    raw: dict[str, Any] | None = None
    encoding: str = "json"
    items: int = 1
    options: dict[str, Any] = field(default_factory=dict)


def require_runnable(version: ModelVersion) -> None:
    """Refuse a version that has no checked signature to run against."""
    if version.validation_status != ValidationStatus.PASSED or not (version.signature or {}).get("inputs"):
        raise NotRunnable(
            f"Version “{version.label}” of {version.model} has not passed validation, so it has no signature to run "
            "against; validate it first."
        )


def _input_names(version: ModelVersion) -> set[str]:
    return {entry["name"] for entry in (version.signature or {}).get("inputs", [])}


def read_json_request(version: ModelVersion, body: Any) -> PredictionInput:
    """Validate a JSON prediction request: ``{"inputs": {...}, "encoding": "json"|"b64"|"npy", "timeout": s,
    "webhook_url": url}``. Errors name the field: ``inputs.input_ids: expected int64, received float64...``."""
    if not isinstance(body, dict):
        raise field_error("non_field_errors", "Send a JSON object with an “inputs” object.", code="invalid")
    unknown = sorted(set(body) - REQUEST_FIELDS)
    if unknown:
        raise field_error(
            unknown[0], f"Unknown field; a prediction takes {', '.join(sorted(REQUEST_FIELDS))}.", code="unknown_field"
        )
    encoding = body.get("encoding", "json")
    if encoding not in ENCODINGS:
        raise field_error(
            "encoding", f"“{encoding}” is not an encoding; use one of {', '.join(ENCODINGS)}.", code="invalid_choice"
        )
    inputs = body.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        raise field_error(
            "inputs", "Required: an object of input name to tensor (or “text” / “image”).", code="required"
        )
    names = _input_names(version)
    if not (set(inputs) & names) and set(inputs) <= READABLE_KEYS:
        return PredictionInput(
            raw=_check_readable(inputs),
            encoding=encoding,
            items=_readable_items(inputs),
            options=_output_choice(version, body),
        )
    try:
        arrays = decode_inputs(inputs, max_bytes=settings.INFERENCE_MAX_REQUEST_BYTES)
        arrays = validate_inputs(version.signature, arrays)
    except (TensorCodecError, InputValidationError) as exc:
        raise refusal_of(exc) from exc
    return PredictionInput(
        arrays=arrays, encoding=encoding, items=_items_of(version, arrays), options=_output_choice(version, body)
    )


def _output_choice(version: ModelVersion, body: dict[str, Any]) -> dict[str, Any]:
    """``"outputs": ["name", ...]``: only these tensors in the answer; ``[]``: the readable answer alone."""
    if "outputs" not in body:
        return {}
    chosen = body["outputs"]
    names = [entry["name"] for entry in (version.signature or {}).get("outputs", [])]
    if not isinstance(chosen, list) or not all(isinstance(name, str) for name in chosen):
        raise field_error("outputs", "Expected a list of output names ([] for the readable answer only).")
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise field_error(
            "outputs",
            f"“{unknown[0]}” is not an output of the model; it has {', '.join(names)}.",
            code="unknown_output",
        )
    return {"outputs": chosen}


def read_npz_request(version: ModelVersion, data: bytes, *, encoding: str = "json") -> PredictionInput:
    """Validate an ``.npz`` request body (one array per model input)."""
    try:
        arrays = decode_npz(data, max_bytes=settings.INFERENCE_MAX_REQUEST_BYTES, field="inputs")
        arrays = validate_inputs(version.signature, arrays)
    except (TensorCodecError, InputValidationError) as exc:
        raise refusal_of(exc) from exc
    if encoding not in ENCODINGS:
        raise field_error(
            "encoding", f"“{encoding}” is not an encoding; use one of {', '.join(ENCODINGS)}.", code="invalid_choice"
        )
    return PredictionInput(arrays=arrays, encoding=encoding, items=_items_of(version, arrays))


def refusal_of(exc: TensorCodecError | InputValidationError) -> ValidationError:
    """The 400 for inputs the codecs or the signature refused: every field, each message with its own code
    (``missing_input`` beside ``unknown_input``, not the first problem's code for all)."""
    return field_errors(exc.errors, code=exc.code, codes=exc.codes)


def _check_readable(inputs: dict[str, Any]) -> dict[str, Any]:
    for key, value in inputs.items():
        values = value if isinstance(value, list) else [value]
        if not values:
            raise field_error(f"inputs.{key}", "An empty list: send at least one item.", code="empty")
        if not all(isinstance(item, str) for item in values):
            raise field_error(f"inputs.{key}", "Expected text (or a list of texts).", code="invalid")
    return inputs


def _readable_items(inputs: dict[str, Any]) -> int:
    value = next(iter(inputs.values()))
    return len(value) if isinstance(value, list) else 1


def _items_of(version: ModelVersion, arrays: dict[str, np.ndarray]) -> int:
    if batch_axis(version.signature or {}):
        first = next(iter(arrays.values()), None)
        if first is not None and first.ndim:
            return int(first.shape[0])
    return 1


def prediction_organization(
    user: Any, bound_organization_id: int | None, version: ModelVersion, deployment: Any
) -> Any:
    """Whom a prediction belongs to (an organization or its id): the deployment's organization for a run of a
    deployment, else the organization the caller acts for (``acting_organization``)."""
    if deployment is not None:
        return deployment.organization_id
    return acting_organization(user, bound_organization_id, version.model.organization_id)


def prediction_subject(user: Any, bound_organization_id: int) -> Q:
    """What a prediction job is about, as a condition on Job rows (``core.jobs.register_job_subject``): the
    deployment it ran when it ran one, else the model of the version it ran; true when the caller, through a token
    bound to ``bound_organization_id``, may view that."""
    from apps.inference.models import Deployment
    from apps.marketplace.models import Model

    deployments = Deployment.objects.restrict(user, "view", within_organization=bound_organization_id)
    models = Model.objects.restrict(user, "view", within_organization=bound_organization_id)
    return Q(inference__deployment__isnull=False, inference__deployment__in=deployments.values("pk")) | Q(
        inference__deployment__isnull=True, inference__version__model__in=models.values("pk")
    )


def batch_subject(user: Any, bound_organization_id: int) -> Q:
    """What a batch job is about (as ``prediction_subject``): its deployment, else its version's model."""
    from apps.inference.models import Deployment
    from apps.marketplace.models import Model

    deployments = Deployment.objects.restrict(user, "view", within_organization=bound_organization_id)
    models = Model.objects.restrict(user, "view", within_organization=bound_organization_id)
    return Q(batch__deployment__isnull=False, batch__deployment__in=deployments.values("pk")) | Q(
        batch__deployment__isnull=True, batch__version__model__in=models.values("pk")
    )


def viewable_models(user: Any, bound_organization_id: int | None, model_ids: Any) -> set[int]:
    """Which of ``model_ids`` the caller may view (``restrict(user, "view")`` under the token's binding), in one
    query: what an answer may name."""
    from apps.marketplace.models import Model

    wanted = {model_id for model_id in model_ids if model_id is not None}
    if not wanted:
        return set()
    visible = Model.objects.restrict(user, "view", within_organization=bound_organization_id)
    return set(visible.filter(pk__in=wanted).values_list("pk", flat=True))


def start_prediction(
    *,
    version: ModelVersion,
    request: PredictionInput,
    user: Any,
    organization: Any,
    deployment: Any = None,
    revision: Any = None,
    device: str = Device.AUTO,
    provider: str = Provider.AUTO,
    webhook_url: str = "",
    time_limit: int | None = None,
    waited: bool = True,
) -> Job:
    """Write the prediction's Job (through ``start_job``, on ``organization``: see ``prediction_organization``) and
    InferenceJob; the job is sent when the transaction commits. ``waited=False``: nobody waits for its outcome
    (answered 202 at once), so the worker does not announce it (``completion.NOBODY_WAITS``)."""
    from apps.inference.routing import gpu_worker_up, queue_for

    if device == Device.GPU and not gpu_worker_up() and not getattr(settings, "INFERENCE_FORCE_QUEUE", None):
        raise NoWorker("This asks for a GPU and no GPU worker is up; try again later or ask for device “auto”.")
    batched = deployment is not None and deployment.max_batch_size > 1 and batch_axis(version.signature or {})
    now = timezone.now()
    inference = InferenceJob(
        version=version,
        deployment=deployment,
        revision=revision,
        inputs=pack_tensors(request.arrays) if request.arrays is not None else b"",
        raw_inputs=request.raw,
        encoding=request.encoding,
        device=device,
        provider_requested=provider,
        items=request.items,
        webhook_url=webhook_url,
        created_at=now,
    )
    # Both rows in one statement where the database allows (``start_job``'s ``beside``), else one transaction.
    job = start_job(
        kind=BATCHED_PREDICT_KIND if batched else PREDICT_KIND,
        params={
            # A run of a deployment names the deployment: the version it served is on the InferenceJob, for
            # those who may see the model (its uuid is not for every caller of a public deployment).
            **({"deployment": str(deployment.uuid)} if deployment else {"version": str(version.uuid)}),
            **request.options,
            **({} if waited else {NOBODY_WAITS: True}),
            **(
                {
                    "batch": {
                        "key": str(deployment.uuid),
                        "max": deployment.max_batch_size,
                        "delay_ms": deployment.max_delay_ms,
                    }
                }
                if batched
                else {}
            ),
        },
        organization=organization,
        creator=user,
        queue=queue_for(device),
        max_attempts=2,
        time_limit=time_limit or (deployment.timeout_seconds if deployment else 60),
        created_at=now,
        beside=inference,
    )
    job.inference = inference
    return job


class NoWorker(Exception):
    """No worker can take the job now (a GPU was asked for and none is up): 503."""


def answer_of(
    job: Job,
    inference: InferenceJob | None = None,
    outcome: dict | None = None,
    payload: bytes = b"",
    *,
    shows_model: bool = True,
) -> dict[str, Any]:
    """The API's view of a prediction job: status, outputs (in the request's encoding), readable answer,
    provider, timings, errors by field when the input was refused.

    A run of a deployment names the deployment and its revision. ``shows_model=False`` (the caller may not view the
    deployment's model: an outsider on a public deployment of a private organization) leaves the model and version
    out (``null``) and out of the error text: the deployment is what such a caller knows and may name."""
    inference = inference or InferenceJob.objects.select_related(
        "version__model__organization", "deployment__organization", "revision"
    ).get(job=job)
    outcome = outcome or {}
    status = outcome.get("status", job.status)
    deployment = inference.deployment if inference.deployment_id else None
    shows_model = shows_model or deployment is None
    answer: dict[str, Any] = {
        "job": str(job.uuid),
        "status": status,
        "model": str(inference.version.model) if shows_model else None,
        "version": inference.version.label if shows_model else None,
        "deployment": str(deployment) if deployment is not None else None,
        "revision": inference.revision.number if deployment is not None and inference.revision_id else None,
        "created_at": job.created_at,
    }
    if status == JobStatus.SUCCEEDED:
        result = outcome.get("result") if "result" in outcome else job.result or {}
        raw_outputs = payload if payload else inference.outputs
        outputs: dict[str, Any] = unpack_tensors(raw_outputs)
        outputs.update((result or {}).get("other_outputs") or {})
        chosen = (job.params or {}).get("outputs")
        if chosen is not None:
            outputs = {name: value for name, value in outputs.items() if name in chosen}
        answer.update(
            provider=(result or {}).get("provider", inference.provider),
            outputs=encode_outputs(outputs, encoding=inference.encoding),
            timings=(result or {}).get("timings", inference.timings),
            batch_size=(result or {}).get("batch_size", inference.batch_size),
        )
        readable = (result or {}).get("answer")
        if readable is not None:
            answer["answer"] = readable
    elif status == JobStatus.FAILED:
        error = outcome.get("error", job.error)
        answer["error"] = error if shows_model else _without_model(error, inference, deployment)
        fields = outcome.get("error_fields", inference.error_fields)
        if fields:
            answer["errors"] = fields
    return answer


def _without_model(text: str, inference: InferenceJob, deployment: Any) -> str:
    """An error text with the model's name (and the version's label beside it) replaced by the deployment's name."""
    model, label = str(inference.version.model), inference.version.label
    text = (text or "").replace(f"“{label}” of {model}", f"of {deployment}")
    return text.replace(f"{model}@{label}", str(deployment)).replace(model, str(deployment))


def input_refusal(answer: dict[str, Any]) -> bool:
    """Whether a failed prediction failed on its input (then the API answers 400, not 200 with a failure)."""
    return bool(answer.get("errors"))


def sync_timeout_maximum() -> float:
    """The longest a synchronous call may wait: the operator's ``INFERENCE_SYNC_TIMEOUT_MAX_SECONDS``, and never so
    near the web server's request limit (``WEB_TIMEOUT_SECONDS``) that the server gives up on the request first."""
    web = float(settings.WEB_TIMEOUT_SECONDS) - float(settings.WEB_ANSWER_MARGIN_SECONDS)
    return max(0.0, min(float(settings.INFERENCE_SYNC_TIMEOUT_MAX_SECONDS), web))


def sync_timeout(requested: Any) -> float:
    """The seconds a synchronous call waits: the client's ``timeout`` within ``sync_timeout_maximum()`` (past it:
    400 naming ``timeout``, the maximum and why)."""
    maximum = sync_timeout_maximum()
    if requested in (None, ""):
        return min(float(settings.INFERENCE_SYNC_TIMEOUT_SECONDS), maximum)
    try:
        value = float(requested)
    except (TypeError, ValueError):
        raise field_error("timeout", "Expected a number of seconds.", code="invalid") from None
    if not 0 <= value <= maximum:
        raise field_error(
            "timeout",
            f"Expected between 0 and {maximum:g} seconds (the web server ends a request after "
            f"{settings.WEB_TIMEOUT_SECONDS:g} s); for a longer wait, send ?async=1 and poll the job's URL.",
            code="out_of_range",
        )
    return value


class TooManyRequests(Exception):
    """The deployment has ``concurrency`` synchronous requests in flight already: 429."""


SLOT_KEY = "gpux:inference:in-flight:"


def acquire_slot(deployment: Any) -> bool:
    """Count one synchronous request in flight on the deployment; False (nothing counted) when it is full.

    The count lives in Redis (every web process shares it); without Redis there is no cap. It expires when no
    request touched it for twice the deployment's timeout, so a web process killed mid-request cannot leak
    slots for good.
    """
    from apps.inference.completion import _client

    client = _client()
    if client is None:
        return True
    key = slot_key(deployment)
    with client.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, slot_expiry(deployment))
        count, _ = pipe.execute()
    if count > deployment.concurrency:
        client.decr(key)
        return False
    return True


def slot_key(deployment: Any) -> str:
    """Where the deployment's requests in flight are counted (the online path counts there too, in one script with
    its push: ``apps.inference.online.gateway.ADMIT``)."""
    return f"{SLOT_KEY}{deployment.uuid}"


def slot_expiry(deployment: Any) -> int:
    return max(10, deployment.timeout_seconds * 2)


def release_slot(deployment: Any) -> None:
    from apps.inference.completion import _client

    client = _client()
    if client is not None:
        client.decr(slot_key(deployment))
