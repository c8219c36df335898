"""Usage of durable jobs: each job that succeeded or failed is recorded once, after its outcome is committed, on the
process that recorded it (a worker), through ``apps.analytics.usage``.

A prediction or pipeline run is a ``job`` (its model, version and deployment from its InferenceJob), a batch job
``batch_rows`` (its rows as items), a registry sync ``sync`` (the models it wrote as items), any other kind ``job``.
Work on the inference queues counts its run time as compute seconds on the queue's device (``gpu`` or ``cpu``),
which the monthly compute quota reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.analytics import usage
from apps.analytics.models import UsageKind
from apps.core.jobs import JobQueue, JobStatus

INFERENCE_QUEUES = {JobQueue.INFERENCE_CPU: "cpu", JobQueue.INFERENCE_GPU: "gpu"}


def _cached(job: Any, relation: str) -> Any:
    """A one-to-one feature row already loaded on ``job`` (no query), else None."""
    return job._state.fields_cache.get(relation)


def _details(job: Any) -> dict[str, Any]:
    from apps.inference.batch import BATCH_KIND
    from apps.inference.models import BatchInference, InferenceJob
    from apps.registries.services import SYNC_KIND

    if job.kind == BATCH_KIND:
        batch = _cached(job, "batch") or BatchInference.objects.filter(job_id=job.pk).select_related("version").first()
        fields: dict[str, Any] = {"kind": UsageKind.BATCH_ROWS}
        if batch is not None:
            fields.update(items=batch.rows_done, version_id=batch.version_id, model_id=batch.version.model_id,
                          deployment_id=batch.deployment_id)  # fmt: skip
        return fields
    if job.kind == SYNC_KIND:
        from apps.registries.models import RegistrySync

        counts = RegistrySync.objects.filter(job_id=job.pk).values_list("created", "updated").first()
        return {"kind": UsageKind.SYNC, "items": sum(counts) if counts else 0}
    inference = _cached(job, "inference")
    if inference is None and job.queue in INFERENCE_QUEUES:
        inference = InferenceJob.objects.filter(job_id=job.pk).select_related("version").first()
    if inference is not None:
        return {"kind": UsageKind.JOB, "items": inference.items, "version_id": inference.version_id,
                "model_id": inference.version.model_id, "deployment_id": inference.deployment_id}  # fmt: skip
    return {"kind": UsageKind.JOB}


def record_job_usage(job: Any, status: str, finished_at: datetime | None = None) -> None:
    """The outcome listener (``apps.core.job_services.register_outcome_listener``)."""
    if status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        return
    details = _details(job)
    seconds = None
    if job.started_at is not None and finished_at is not None:
        seconds = max(0.0, (finished_at - job.started_at).total_seconds())
    device = INFERENCE_QUEUES.get(job.queue, "")
    usage.record(
        details.pop("kind"),
        organization_id=job.organization_id,
        user_id=job.creator_id,
        latency_ms=None if seconds is None else round(seconds * 1000, 3),
        outcome="ok" if status == JobStatus.SUCCEEDED else "error",
        compute_seconds=round(seconds, 6) if device and seconds else None,
        device=device or None,
        subject_type="core.job",
        subject_id=str(job.uuid),
        metadata={"job_kind": job.kind},
        event_id=job.uuid.hex,  # one outcome per job: counted once, however often it is reported
        **details,
    )
