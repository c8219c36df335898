"""The worker side of predictions: run one prediction job, or a merged batch of them, and record each outcome.

Called by the tasks in ``apps.inference.tasks`` with claimed jobs. Outcomes are written for the attempt that
claimed each job (``finish_job``/``fail_job``), so a job that ran twice records one result; then whoever waits
(a synchronous call, a webhook) is told.

Failures and their reasons:

* the input is refused by the version's pre-processing or the signature: ``error_fields`` names the field and
  the API answers 400;
* the model cannot load: the job fails with ONNX Runtime's reason;
* a run past the job's time limit is stopped (ONNX Runtime's terminate flag) and the job fails saying so;
* an allocation past the worker's memory limit, or outputs over ``INFERENCE_MAX_OUTPUT_BYTES``: the job fails
  with the reason and is not retried; after a memory failure the worker process exits so the pool replaces it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction

from apps.core import jsondata
from apps.core.job_services import fail_job, finish_jobs
from apps.core.jobs import Job, JobStatus
from apps.inference import metrics as inference_metrics
from apps.inference.completion import nobody_waits, notify_finished, notify_finished_many
from apps.inference.execution import load_version, pack_tensors, prepare_inputs, run_version, unpack_tensors
from apps.inference.models import InferenceJob
from apps.inference.runtime.codecs import TensorCodecError, split_outputs
from apps.inference.runtime.validation import InputValidationError, merge_batch, mergeable, split_batch
from apps.marketplace.models import ModelVersion

logger = logging.getLogger(__name__)
MEMORY_MARKERS = ("bad_alloc", "bad allocation", "failed to allocate", "out of memory", "std::bad_alloc")


class InputRefused(Exception):
    """The worker refused the job's input (pre-processing or validation); ``errors`` names the fields."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))
        self.errors = errors


class MemoryLimitExceeded(Exception):
    """The model allocated past what this worker may hold."""


def _processing_errors() -> tuple[type[Exception], ...]:
    from apps.inference.processing import ProcessingError

    return (ProcessingError, TensorCodecError, InputValidationError)


def memory_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (Python's MemoryError or ONNX Runtime's bad_alloc)."""
    if isinstance(exc, MemoryError | MemoryLimitExceeded):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in MEMORY_MARKERS)


def memory_message() -> str:
    from apps.inference.worker_memory import applied_limit_mb

    limit = applied_limit_mb()
    where = f"the worker's limit of {limit} MiB" if limit else "the memory this worker has"
    return f"The model needed more memory than {where}; the job is not retried. Use a larger worker or a smaller batch."


@dataclass
class Prepared:
    job: Job
    inference: InferenceJob
    inputs: dict[str, np.ndarray]


def _success_of(
    prepared: Prepared, *, outputs: dict[str, Any], answer: Any, provider: str, timings: dict, batch_size: int
) -> tuple[dict[str, Any], bytes]:
    chosen = (prepared.job.params or {}).get("outputs")
    if chosen is not None:
        # The caller named the outputs it wants (``[]``: the readable answer alone): only those are encoded, kept
        # with the job and sent back; an embedding model's hidden state is most of a request's bytes otherwise.
        outputs = {name: value for name, value in outputs.items() if name in chosen}
    tensors, others = split_outputs(outputs)
    result = {
        "provider": provider,
        "timings": timings,
        "batch_size": batch_size,
        "outputs": {name: {"dtype": str(value.dtype), "shape": list(value.shape)} for name, value in tensors.items()},
    }
    if others:
        result["other_outputs"] = others
    if answer is not None:
        result["answer"] = answer
    inference = prepared.inference
    # The readable answer is kept once, in the job's result (what every answer is read from), not again in the row.
    inference.outputs, inference.provider = pack_tensors(tensors), provider
    inference.timings, inference.batch_size, inference.worker = timings, batch_size, _worker_name()
    return result, inference.outputs


def _record_successes(items: list[tuple[Prepared, dict[str, Any], bytes]]) -> set[int]:
    """Record many successes in one transaction of two statements: the outputs, then the jobs, each conditional
    on its own claim (``finish_jobs``). A reader that sees a job succeeded finds its outputs; an attempt that lost
    its claim may have rewritten the same inputs' outputs, never the job's result."""
    if not items:
        return set()
    with transaction.atomic():
        store_outputs([prepared.inference for prepared, _, _ in items])
        recorded = finish_jobs([(prepared.job, result) for prepared, result, _ in items])
    notify_finished_many(
        [
            (prepared.job.uuid, {"status": JobStatus.SUCCEEDED, "result": result}, payload)
            for prepared, result, payload in items
            if prepared.job.pk in recorded and not nobody_waits(prepared.job)
        ]
    )
    for prepared, _, _ in items:
        if prepared.job.pk in recorded:
            inference_metrics.prediction_succeeded(prepared.job, prepared.inference)
            _after(prepared.job, prepared.inference)
    return recorded


OUTPUT_FIELDS = ("outputs", "provider", "timings", "batch_size", "worker")


def store_outputs(inferences: list[InferenceJob]) -> None:
    """Write the outputs of many prediction jobs (``OUTPUT_FIELDS``). On PostgreSQL one UPDATE over a VALUES
    list, as ``finish_jobs`` records their jobs (``bulk_update`` builds a CASE per field and row in Python, a few
    milliseconds per job); elsewhere ``bulk_update``."""
    if connection.vendor != "postgresql":
        InferenceJob.objects.bulk_update(inferences, list(OUTPUT_FIELDS))
        return
    rows = [
        (
            inference.pk,
            inference.outputs,
            inference.provider,
            jsondata.dumps_text(inference.timings),
            inference.batch_size,
            inference.worker,
        )
        for inference in inferences
    ]
    values = ", ".join(["(%s, %s::bytea, %s, %s::jsonb, %s::integer, %s)"] * len(rows))
    table = connection.ops.quote_name(InferenceJob._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS i SET outputs = v.outputs, provider = v.provider, "  # noqa: S608 - table from the model, values bound
            "timings = v.timings, batch_size = v.batch_size, worker = v.worker "
            f"FROM (VALUES {values}) AS v(job_id, outputs, provider, timings, batch_size, worker) "
            "WHERE i.job_id = v.job_id",
            [value for row in rows for value in row],
        )


def _record_success(prepared: Prepared, **success: Any) -> str | None:
    result, payload = _success_of(prepared, **success)
    return JobStatus.SUCCEEDED if _record_successes([(prepared, result, payload)]) else None


def _record_failure(
    job: Job, inference: InferenceJob, error: str, *, fields: dict | None = None, trace: str = ""
) -> bool:
    with transaction.atomic():
        recorded = fail_job(job, error=error, traceback=trace)
        if recorded:
            # The worker too on every failure: after a memory failure it names the process the pool replaced.
            changes = {"error_fields": fields} if fields else {}
            InferenceJob.objects.filter(pk=inference.pk).update(worker=_worker_name(), **changes)
    if recorded:
        if not nobody_waits(job):
            notify_finished(job.uuid, {"status": JobStatus.FAILED, "error": error, "error_fields": fields})
        inference_metrics.prediction_failed(inference, error, fields)
        _after(job, inference)
    return recorded


def _after(job: Job, inference: InferenceJob) -> None:
    if inference.webhook_url:
        from apps.inference.webhooks import queue_webhook

        queue_webhook(job)


def _worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"


def _prepare(job: Job, inference: InferenceJob, loaded: Any) -> dict[str, np.ndarray]:
    try:
        if inference.raw_inputs is not None:
            return prepare_inputs(loaded, arrays=None, raw=inference.raw_inputs)
        return unpack_tensors(inference.inputs)
    except _processing_errors() as exc:
        raise InputRefused(exc.errors) from exc


def time_limit_message(seconds: float) -> str:
    """The job's error when a run was stopped at its time limit (as ``RunTimeLimitExceeded`` says it)."""
    return f"The model ran past its time limit of {float(seconds):g} s and was stopped."


def failure_reason(exc: BaseException, time_limit: float) -> str:
    """The error recorded for a failed run: the exception's message; the time limit for Celery's soft limit."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return time_limit_message(time_limit)
    return str(exc) or type(exc).__name__


def run_prediction(job: Job) -> str:
    """Run one claimed prediction job and record its outcome; the status recorded (or "lost").

    Celery's soft time limit (the job's ``time_limit``, counted from the task's start) usually lands before
    ONNX Runtime's own watchdog (counted from the run's start), and may land anywhere, even while an outcome is
    being written (its transaction then rolls back): wherever it lands, the job is marked as stopped at its limit.
    """
    import traceback

    try:
        return _run_prediction(job)
    except SoftTimeLimitExceeded:
        inference = InferenceJob.objects.get(job=job)
        error = time_limit_message(job.time_limit)
        return JobStatus.FAILED if _record_failure(job, inference, error, trace=traceback.format_exc()) else "lost"


def _run_prediction(job: Job) -> str:
    import traceback

    started = time.perf_counter()
    # The version alone: its model and organization load only if an error message names them.
    inference = InferenceJob.objects.select_related("version").get(job=job)
    job.inference = inference  # what the outcome's listeners read (usage), without another query
    queued_ms = max(0.0, (job.started_at - job.created_at).total_seconds() * 1000) if job.started_at else 0.0
    try:
        loaded = load_version(inference.version, provider=inference.provider_requested)
        inputs = _prepare(job, inference, loaded)
        ran = run_version(loaded, inputs, time_limit=float(job.time_limit), readable=True)
    except InputRefused as exc:
        return JobStatus.FAILED if _record_failure(job, inference, str(exc), fields=exc.errors) else "lost"
    except Exception as exc:
        if memory_failure(exc):
            _record_failure(job, inference, memory_message(), trace=traceback.format_exc())
            replace_this_process()
            return JobStatus.FAILED
        error = failure_reason(exc, job.time_limit)
        logger.warning("Prediction %s failed: %s", job.uuid, error)
        return JobStatus.FAILED if _record_failure(job, inference, error, trace=traceback.format_exc()) else "lost"
    timings = {
        "queued_ms": round(queued_ms, 3),
        **ran.timings,
        "worker_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    prepared = Prepared(job, inference, inputs)
    status = _record_success(
        prepared,
        outputs=ran.outputs,
        answer=ran.answer,
        provider=ran.provider,
        timings=timings,
        batch_size=int(_first_dim(inputs)),
    )
    return status or "lost"


def _first_dim(inputs: dict[str, np.ndarray]) -> int:
    first = next(iter(inputs.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


def run_prediction_batch(jobs: list[Job]) -> dict[str, int]:
    """Run claimed prediction jobs of one or more versions, each version's jobs merged into one batch where
    their inputs merge (same shapes, or sequences padded under an attention mask), then split back."""
    counts = {"succeeded": 0, "failed": 0, "batches": 0}
    inferences = {row.pk: row for row in InferenceJob.objects.filter(job__in=[j.pk for j in jobs])}
    # Each version once, not once per job: a version row carries its signature and manifest (JSON read per row).
    versions = ModelVersion.objects.in_bulk({row.version_id for row in inferences.values()})
    for row in inferences.values():
        row.version = versions[row.version_id]
    inference_metrics.batches_flushed(jobs, inferences)
    by_version: dict[int, list[Job]] = {}
    for job in jobs:
        job.inference = inferences[job.pk]  # what the outcome's listeners read (usage), without a query per job
        by_version.setdefault(inferences[job.pk].version_id, []).append(job)
    for group in by_version.values():
        version = inferences[group[0].pk].version
        try:
            loaded = load_version(version, provider=inferences[group[0].pk].provider_requested)
        except Exception as exc:
            for job in group:
                counts["failed"] += _record_failure(job, inferences[job.pk], str(exc) or type(exc).__name__)
            continue
        ready: list[Prepared] = []
        for job in group:
            inference = inferences[job.pk]
            try:
                ready.append(Prepared(job, inference, _prepare(job, inference, loaded)))
            except InputRefused as exc:
                counts["failed"] += _record_failure(job, inference, str(exc), fields=exc.errors)
        for chunk in _mergeable_chunks(ready, loaded):
            counts["batches"] += 1
            _run_chunk(chunk, loaded, counts)
    return counts


def _mergeable_chunks(ready: list[Prepared], loaded: Any) -> list[list[Prepared]]:
    names = {entry["name"] for entry in loaded.signature.get("inputs", [])}
    pad = "attention_mask" in names
    chunks: list[list[Prepared]] = []
    for item in ready:
        for chunk in chunks:
            if mergeable(chunk[0].inputs, item.inputs, pad=pad):
                chunk.append(item)
                break
        else:
            chunks.append([item])
    return chunks


def _run_chunk(chunk: list[Prepared], loaded: Any, counts: dict[str, int]) -> None:
    import traceback

    names = {entry["name"] for entry in loaded.signature.get("inputs", [])}
    started = time.perf_counter()
    try:
        merged, sizes = merge_batch([item.inputs for item in chunk], pad="attention_mask" in names)
        ran = run_version(loaded, merged, time_limit=float(min(item.job.time_limit for item in chunk)))
        parts = split_batch(ran.outputs, sizes)
    except Exception as exc:
        if memory_failure(exc):
            for item in chunk:
                counts["failed"] += _record_failure(
                    item.job, item.inference, memory_message(), trace=traceback.format_exc()
                )
            replace_this_process()
            return
        error = failure_reason(exc, min(item.job.time_limit for item in chunk))
        for item in chunk:
            counts["failed"] += _record_failure(item.job, item.inference, error, trace=traceback.format_exc())
        return
    batch_ms = (time.perf_counter() - started) * 1000
    total = sum(sizes)
    successes = []
    for item, outputs in zip(chunk, parts, strict=True):
        answer = loaded.processor.postprocess(outputs, item.inputs)
        queued_ms = (item.job.started_at - item.job.created_at).total_seconds() * 1000 if item.job.started_at else 0.0
        timings = {"queued_ms": round(max(0.0, queued_ms), 3), "batch_ms": round(batch_ms, 3), **ran.timings}
        result, payload = _success_of(
            item, outputs=outputs, answer=answer, provider=ran.provider, timings=timings, batch_size=total
        )
        successes.append((item, result, payload))
    counts["succeeded"] += len(_record_successes(successes))


def replace_this_process() -> None:
    """Leave a prefork pool child after a memory failure so that the pool starts a fresh process (the message is
    redelivered, finds its job already failed and does nothing). In any other process: nothing."""
    from billiard.process import current_process

    if current_process().name != "MainProcess" and os.environ.get("GPUX_INFERENCE_NO_EXIT") != "1":
        logger.error("Inference worker process %s exits after a memory failure; the pool replaces it.", os.getpid())
        os._exit(70)
