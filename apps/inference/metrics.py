"""What the prediction path tells Prometheus (apps.core.metrics): latency by model, version, deployment, provider and
batch size; failures by reason; how full the merged batches of batching deployments were.

Labels name things, never people: a model as ``owner/name``, a version by its label, a deployment as
``owner/slug`` (empty for a direct run of a version). The names are read once per process and kept (a bounded
dict), so recording costs no query per prediction.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from django.utils import timezone

from apps.core import metrics

logger = logging.getLogger(__name__)
_NAMES_KEPT = 2048
_versions: OrderedDict[int, tuple[str, str]] = OrderedDict()
_deployments: OrderedDict[int, str] = OrderedDict()


def _remember(cache: OrderedDict, key: int, value: Any) -> Any:
    cache[key] = value
    if len(cache) > _NAMES_KEPT:
        cache.popitem(last=False)
    return value


def version_names(version_id: int) -> tuple[str, str]:
    """(``owner/name`` of the model, the version's label)."""
    names = _versions.get(version_id)
    if names is None:
        from apps.marketplace.models import ModelVersion

        row = (
            ModelVersion.objects.filter(pk=version_id)
            .values_list("model__organization__slug", "model__name", "label")
            .first()
        )
        names = _remember(_versions, version_id, (f"{row[0]}/{row[1]}", str(row[2])) if row else ("", ""))
    return names


def deployment_name(deployment_id: int | None) -> str:
    if deployment_id is None:
        return metrics.NONE
    name = _deployments.get(deployment_id)
    if name is None:
        from apps.inference.models import Deployment

        row = Deployment.objects.filter(pk=deployment_id).values_list("organization__slug", "slug").first()
        name = _remember(_deployments, deployment_id, f"{row[0]}/{row[1]}" if row else "")
    return name


def prediction_succeeded(job: Any, inference: Any) -> None:
    """A prediction's outcome was recorded as a success (its provider and batch size are on ``inference``)."""
    try:
        model, version = version_names(inference.version_id)
        deployment = deployment_name(inference.deployment_id)
    except Exception:  # a metric never fails a prediction
        return
    seconds = (timezone.now() - job.created_at).total_seconds()
    metrics.inference_finished(
        model=model,
        version=version,
        deployment=deployment,
        provider=inference.provider,
        batch_size=int(inference.batch_size or 1),
        seconds=seconds,
    )


def failure_reason(error: str, fields: dict | None) -> str:
    """input (refused by pre-processing or the signature), memory, time_limit or error."""
    from apps.inference.serving import memory_message

    if fields:
        return "input"
    if error == memory_message():
        return "memory"
    if "time limit" in error:
        return "time_limit"
    return "error"


def prediction_failed(inference: Any, error: str, fields: dict | None = None, *, reason: str | None = None) -> None:
    try:
        model, _version = version_names(inference.version_id)
        deployment = deployment_name(inference.deployment_id)
    except Exception:
        return
    metrics.inference_failed(model=model, deployment=deployment, reason=reason or failure_reason(error, fields))


def batches_flushed(jobs: list[Any], inferences: dict[int, Any]) -> None:
    """One flush of a batching worker: per deployment, the requests it held against its ``max_batch_size``."""
    by_deployment: dict[int | None, list[Any]] = {}
    for job in jobs:
        by_deployment.setdefault(inferences[job.pk].deployment_id, []).append(job)
    for deployment_id, group in by_deployment.items():
        largest = int(((group[0].params or {}).get("batch") or {}).get("max", 1) or 1)
        if deployment_id is None or largest <= 1:
            continue
        try:
            name = deployment_name(deployment_id)
        except Exception:  # a metric never fails a prediction
            logger.warning("Could not name deployment %s for the batch metrics", deployment_id, exc_info=True)
            continue
        metrics.inference_batch(deployment=name, items=len(group), max_batch_size=largest)
