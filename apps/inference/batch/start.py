"""Starting a batch job: the file checked and counted, then the Job and its ``BatchInference`` row written and
the task sent when the transaction commits."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from apps.core.errors import field_error
from apps.core.job_services import start_job
from apps.core.jobs import Job
from apps.inference.batch.inspection import inspect_batch_file, resolve_format
from apps.inference.models import BatchInference, Device, Provider
from apps.inference.predictions import require_runnable
from apps.marketplace.models import ModelVersion

BATCH_KIND = "inference.batch"
DEFAULT_CHUNK_SIZE = 32
MAX_CHUNK_SIZE = 4096


def batch_time_limit() -> int:
    """Seconds one attempt of a batch job may run (``INFERENCE_BATCH_TIME_LIMIT_SECONDS``)."""
    return int(getattr(settings, "INFERENCE_BATCH_TIME_LIMIT_SECONDS", 3600))


# --- starting a batch job -----------------------------------------------------------------------------------------


def start_batch_inference(
    *,
    version: ModelVersion,
    uploaded: Any,
    input_format: str | None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    user: Any,
    organization: Any,
    deployment: Any = None,
    include_outputs: bool = True,
) -> Job:
    """Check and count the uploaded file, then write the batch Job and its ``BatchInference`` row and send the task
    when the transaction commits (on ``inference.gpu`` or ``inference.cpu``: ``routing.queue_for``).

    Raises ``NotRunnable`` (the version has no checked signature) and Django ``ValidationError`` naming the field
    for anything wrong with the file or the parameters. ``organization`` is whom the run counts against (an
    Organization or its id); the job is seen by ``user`` and that organization's admins.
    """
    from apps.inference.routing import queue_for
    from apps.organizations.models import Organization

    require_runnable(version)
    if not 1 <= int(chunk_size) <= MAX_CHUNK_SIZE:
        raise field_error("chunk_size", f"Expected 1 to {MAX_CHUNK_SIZE} rows a chunk, received {chunk_size}.")
    if uploaded is None:
        raise field_error("file", "Required: the file of rows (JSONL, CSV or NPZ).", code="required")
    fmt = resolve_format(input_format, getattr(uploaded, "name", ""))
    inspected = inspect_batch_file(version, uploaded, fmt)
    if not isinstance(organization, Organization):
        organization = Organization.objects.get(pk=organization)
    device = deployment.device if deployment is not None else Device.AUTO
    provider = deployment.provider if deployment is not None else Provider.AUTO
    params = {
        "version": str(version.uuid),
        "deployment": str(deployment.uuid) if deployment is not None else None,
        "format": fmt,
        "plan": inspected.plan,
        "include_outputs": bool(include_outputs),
        "provider": provider,
    }
    saved_name = ""
    try:
        with transaction.atomic():
            job = start_job(
                kind=BATCH_KIND,
                organization=organization,
                creator=user,
                params=params,
                queue=queue_for(device),
                time_limit=batch_time_limit(),
            )
            batch = BatchInference(
                job=job,
                version=version,
                deployment=deployment,
                input_format=fmt,
                input_name=str(getattr(uploaded, "name", "") or "")[:255],
                rows_total=inspected.rows,
                chunk_size=int(chunk_size),
                created_at=job.created_at,
            )
            uploaded.seek(0)
            batch.input_file.save(f"{job.uuid}.{fmt}", File(uploaded), save=False)
            saved_name = batch.input_file.name
            batch.save()
    except Exception:
        if saved_name:  # the rows were stored but the job was not: leave nothing half-written
            default_storage.delete(saved_name)
        raise
    job.batch = batch
    return job
