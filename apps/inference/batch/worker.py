"""The worker side of a batch job: rows into model inputs, a chunk run (merged where the model has a batch
axis), each chunk's results written as one part and ``rows_done`` saved, resumable after a crash."""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from apps.core.job_services import JobClaimLost, ProgressReporter
from apps.core.jobs import Job, JobStatus
from apps.core.parsing import InvalidText, NestingTooDeep, loads_json
from apps.inference.batch.formats import csv_records, inputs_of, jsonl_lines, max_batch_file_bytes
from apps.inference.batch.results import part_count, part_name, results_name, write_results
from apps.inference.execution import load_version, prepare_inputs, run_version
from apps.inference.models import BatchFormat, BatchInference, Provider
from apps.inference.predictions import READABLE_KEYS
from apps.inference.runtime.codecs import TensorCodecError, decode_inputs, decode_npz, encode_outputs
from apps.inference.runtime.sessions import RunTimeLimitExceeded
from apps.inference.runtime.validation import (
    InputValidationError,
    batch_axis,
    merge_batch,
    mergeable,
    split_batch,
    validate_inputs,
)

logger = logging.getLogger(__name__)

CHUNK_DELAY_ENV = "GPUX_BATCH_CHUNK_DELAY_SECONDS"


# --- the worker: rows into model inputs ------------------------------------------------------------------------


class RowRefused(Exception):
    """One row's input was refused; ``errors`` names the fields (``inputs.float_input``) as the API does."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(messages)}" for key, messages in errors.items()))
        self.errors = errors


@dataclass
class Row:
    """One row of the file: its number (from 0, the CSV header not counted) and what it holds, or its error."""

    index: int
    content: Any = None
    error: dict[str, list[str]] | None = None


def _input_errors() -> tuple[type[Exception], ...]:
    from apps.inference.processing import ProcessingError

    return (ProcessingError, TensorCodecError, InputValidationError)


def _with_leading_ones(signature: dict, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A row's tensors missing leading (batch) dimensions get them: ``[5.1, 3.5, 1.4, 0.2]`` for a [batch, 4]
    input becomes [[5.1, 3.5, 1.4, 0.2]]; a number for a [batch] input becomes [number]."""
    declared = {entry["name"]: entry.get("shape") for entry in signature.get("inputs") or []}
    fitted = {}
    for name, array in arrays.items():
        shape = declared.get(name)
        if isinstance(shape, list) and array.ndim < len(shape):
            array = array.reshape((1,) * (len(shape) - array.ndim) + array.shape)
        fitted[name] = array
    return fitted


def tensors_or_readable(loaded: Any, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """The model inputs of one row given as a request's ``inputs`` object (tensors by input name, or readable
    ``text`` / ``image``), validated against the signature; ``RowRefused`` naming the field otherwise."""
    names = {entry["name"] for entry in loaded.signature.get("inputs") or []}
    try:
        if not (set(inputs) & names) and set(inputs) <= READABLE_KEYS:
            return prepare_inputs(loaded, arrays=None, raw=inputs)
        arrays = decode_inputs(inputs, max_bytes=settings.INFERENCE_MAX_REQUEST_BYTES, field="inputs")
        return validate_inputs(loaded.signature, _with_leading_ones(loaded.signature, arrays))
    except _input_errors() as exc:
        raise RowRefused(exc.errors) from exc


def _jsonl_inputs(line: bytes, names: set[str]) -> dict[str, Any]:
    try:
        row = loads_json(line)
    except UnicodeDecodeError:
        raise RowRefused({"row": ["not UTF-8 text"]}) from None
    except (NestingTooDeep, InvalidText) as exc:
        raise RowRefused({"row": [str(exc)]}) from None
    except ValueError as exc:
        raise RowRefused({"row": [f"not JSON: {exc}"]}) from None
    if not isinstance(row, dict):
        raise RowRefused({"row": [f"expected a JSON object, received a {type(row).__name__}"]})
    if "inputs" in row and "inputs" not in names:
        inputs = row["inputs"]
        if not isinstance(inputs, dict):
            raise RowRefused({"inputs": ["expected an object of input name to tensor (or “text” / “image”)"]})
        row = inputs
    if not row:
        raise RowRefused({"inputs": ["no inputs given"]})
    return row


def _cell_value(cell: str) -> Any:
    try:
        return loads_json(cell)
    except (NestingTooDeep, InvalidText) as exc:
        raise RowRefused({"row": [str(exc)]}) from None
    except ValueError:
        return cell


def _csv_inputs(plan: dict[str, Any], record: list[str]) -> dict[str, Any]:
    if len(record) != plan["width"]:
        raise RowRefused({"row": [f"has {len(record)} cells, the header has {plan['width']}"]})
    if plan["mode"] == "readable":
        return {plan["key"]: record[plan["column"]]}
    if plan["mode"] == "columns":
        inputs: dict[str, Any] = {}
        empty = {}
        for name, column in plan["columns"].items():
            cell = record[column].strip()
            if not cell:
                empty[f"inputs.{name}"] = [f"the cell of column “{name}” is empty"]
            inputs[name] = _cell_value(cell)
        if empty:
            raise RowRefused(empty)
        return inputs
    name, header = plan["input"], plan["header"]
    values, bad = [], []
    for position, (title, cell) in enumerate(zip(header, record, strict=True), start=1):
        try:
            values.append(float(cell.strip()))
        except ValueError:
            shown = cell.strip()
            bad.append(f"column {position} (“{title}”): " + (f"“{shown}” is not a number" if shown else "empty"))
    if bad:
        raise RowRefused({f"inputs.{name}": bad})
    return {name: np.asarray([values], dtype=np.float64)}


def iter_rows(batch: BatchInference, params: dict[str, Any], *, start: int = 0) -> Iterator[Row]:
    """The rows of the batch's stored file from row ``start`` on, each holding what ``row_model_inputs`` takes,
    or its error (a line that is not JSON, a CSV row with a cell that is not a number...)."""
    fmt = params["format"]
    names = {entry["name"] for entry in inputs_of(batch.version)}
    with default_storage.open(batch.input_file.name, "rb") as stored:
        if fmt == BatchFormat.NPZ:
            yield from _npz_rows(stored.read(), params["plan"], start)
            return
        if fmt == BatchFormat.JSONL:
            for index, line in enumerate(jsonl_lines(stored)):
                if index < start:
                    continue
                try:
                    yield Row(index, ("inputs", _jsonl_inputs(line, names)))
                except RowRefused as refused:
                    yield Row(index, error=refused.errors)
            return
        records = csv_records(stored)
        next(records, None)  # the header: its plan was made at upload
        for index, record in enumerate(records):
            if index < start:
                continue
            try:
                content = _csv_inputs(params["plan"], record)
            except RowRefused as refused:
                yield Row(index, error=refused.errors)
                continue
            kind = "arrays" if params["plan"]["mode"] == "vector" else "inputs"
            yield Row(index, (kind, content))


def _npz_rows(data: bytes, plan: dict[str, Any], start: int) -> Iterator[Row]:
    arrays = decode_npz(data, max_bytes=max_batch_file_bytes(), field="file")
    total = len(next(iter(arrays.values())))
    how = plan["arrays"]
    for index in range(start, total):
        row = {
            name: (array[index : index + 1] if how[name] == "slice" else array[index]) for name, array in arrays.items()
        }
        yield Row(index, ("arrays", row))


def row_model_inputs(loaded: Any, row: Row) -> dict[str, np.ndarray]:
    """The validated model inputs of a row; ``RowRefused`` naming the field when they do not fit the model."""
    kind, content = row.content
    if kind == "inputs":
        return tensors_or_readable(loaded, content)
    try:
        return validate_inputs(loaded.signature, content)
    except InputValidationError as exc:
        raise RowRefused(exc.errors) from exc


# --- the worker: running a chunk --------------------------------------------------------------------------------


@dataclass
class RowResult:
    """What one row gave: its outputs (by name) and readable answer, or its error by field."""

    index: int
    outputs: dict[str, Any] | None = None
    answer: Any = None
    error: dict[str, list[str]] | None = None


def _fatal(exc: BaseException) -> bool:
    """Failures that are the job's, not a row's: memory, a run past the time limit."""
    from apps.inference.serving import memory_failure

    return memory_failure(exc) or isinstance(exc, RunTimeLimitExceeded)


def _raise_fatal(exc: BaseException) -> None:
    from apps.inference.serving import MemoryLimitExceeded, memory_failure, memory_message

    if memory_failure(exc):
        raise MemoryLimitExceeded(memory_message()) from exc
    raise exc


def run_chunk(loaded: Any, rows: list[Row], *, time_limit: float, readable: bool = True) -> list[RowResult]:
    """Run one chunk of rows: each row validated alone (a refused row is that row's error), the valid ones merged
    into one model run where the model has a batch axis and their shapes merge (token sequences are padded under
    the attention mask), else run one by one; split back and post-processed row by row. A merged run that fails
    is run again row by row, so that a failure is pinned on the row that causes it. Memory failures and runs past
    the time limit fail the job (they are raised)."""
    results: dict[int, RowResult] = {}
    ready: list[tuple[Row, dict[str, np.ndarray]]] = []
    for row in rows:
        if row.error is not None:
            results[row.index] = RowResult(row.index, error=row.error)
            continue
        try:
            ready.append((row, row_model_inputs(loaded, row)))
        except RowRefused as refused:
            results[row.index] = RowResult(row.index, error=refused.errors)
    names = {entry["name"] for entry in loaded.signature.get("inputs") or []}
    pad = "attention_mask" in names
    groups: list[list[tuple[Row, dict[str, np.ndarray]]]] = []
    if batch_axis(loaded.signature):
        for item in ready:
            for group in groups:
                if mergeable(group[0][1], item[1], pad=pad):
                    group.append(item)
                    break
            else:
                groups.append([item])
    else:
        groups = [[item] for item in ready]
    for group in groups:
        for row, inputs, outputs, error in _run_group(loaded, group, pad=pad, time_limit=time_limit):
            if error is not None:
                results[row.index] = RowResult(row.index, error=error)
                continue
            answer = None
            if readable:
                try:
                    # Row by row: pooling reads the row's own attention mask, the padding trimmed off.
                    answer = loaded.processor.postprocess(outputs, inputs)
                except _input_errors() as exc:
                    results[row.index] = RowResult(row.index, error=exc.errors)
                    continue
            results[row.index] = RowResult(row.index, outputs=outputs, answer=answer)
    return [results[row.index] for row in rows]


def _run_group(
    loaded: Any, group: list[tuple[Row, dict[str, np.ndarray]]], *, pad: bool, time_limit: float
) -> list[tuple[Row, dict[str, np.ndarray], dict[str, Any] | None, dict[str, list[str]] | None]]:
    """Each row of a group with its inputs, and its outputs or its error: merged into one run when there are
    several, else (or when the merged run failed) one run per row."""
    if len(group) > 1:
        try:
            merged, sizes = merge_batch([inputs for _, inputs in group], pad=pad)
            ran = run_version(loaded, merged, time_limit=time_limit)
            parts = split_batch(ran.outputs, sizes)
        except Exception as exc:
            if _fatal(exc):
                _raise_fatal(exc)
            logger.info("A merged chunk of %s rows failed (%s); running its rows one by one.", len(group), exc)
        else:
            return [(row, inputs, outputs, None) for (row, inputs), outputs in zip(group, parts, strict=True)]
    answers = []
    for row, inputs in group:
        try:
            answers.append((row, inputs, run_version(loaded, inputs, time_limit=time_limit).outputs, None))
        except Exception as exc:
            if _fatal(exc):
                _raise_fatal(exc)
            answers.append((row, inputs, None, {"run": [str(exc) or type(exc).__name__]}))
    return answers


def _json_line(result: RowResult, include_outputs: bool) -> bytes:
    if result.error is not None:
        record: dict[str, Any] = {"row": result.index, "error": result.error}
    else:
        record = {"row": result.index}
        if include_outputs or result.answer is None:
            record["outputs"] = encode_outputs(result.outputs or {}, encoding="json")
        if result.answer is not None:
            record["answer"] = result.answer
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _row_tensor(value: Any, batched: bool) -> np.ndarray | None:
    if not isinstance(value, np.ndarray):
        return None
    if value.dtype.hasobject:
        value = value.astype(np.str_)
    return value[0] if batched and value.ndim and value.shape[0] == 1 else value


def _npz_part(results: list[RowResult], batched: bool) -> bytes:
    ok = [result for result in results if result.error is None]
    failed = [result for result in results if result.error is not None]
    arrays: dict[str, np.ndarray] = {
        "__rows__": np.asarray([result.index for result in ok], dtype=np.int64),
        "__failed__": np.asarray([result.index for result in failed], dtype=np.int64),
        "__errors__": np.asarray([json.dumps(result.error, ensure_ascii=False) for result in failed], dtype=np.str_),
    }
    if ok:
        for name in ok[0].outputs or {}:
            values = [_row_tensor((result.outputs or {}).get(name), batched) for result in ok]
            if any(value is None for value in values):
                continue  # not a tensor (a sequence of maps): an .npz holds arrays only
            try:
                arrays[f"out.{name}"] = np.stack(values)
            except ValueError as exc:
                raise ValueError(
                    f"outputs.{name}: the rows' outputs have different shapes and cannot be stacked into one array "
                    f"({exc}); send the rows as JSONL to get each row's outputs"
                ) from None
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _save_exactly(name: str, content: Any) -> None:
    # A crashed attempt may have left this part (half) written: this attempt's is the one that counts.
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, content)
    if saved != name:  # a race with another writer of the same name; never the case for one owner of the job
        default_storage.delete(saved)
        raise JobClaimLost(f"Another attempt wrote {name} at the same time.")


def _commit_chunk(job: Job, batch: BatchInference, *, before: int, rows_done: int, rows_failed: int, provider: str):
    """Save ``rows_done`` and the job's progress and heartbeat in one transaction, if this attempt still owns the
    job and no one else moved ``rows_done`` since; ``JobClaimLost`` otherwise (the part it wrote is then ignored:
    the owner rewrites it)."""
    now = timezone.now()
    fraction = rows_done / batch.rows_total if batch.rows_total else 1.0
    message = f"{rows_done} of {batch.rows_total} rows" + (f" ({rows_failed} failed)" if rows_failed else "")
    with transaction.atomic():
        owned = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts).update(
            progress=min(1.0, fraction), progress_message=message, heartbeat_at=now
        )
        moved = owned and BatchInference.objects.filter(pk=batch.pk, rows_done=before).update(
            rows_done=rows_done, rows_failed=rows_failed, provider=provider
        )
        if not moved:
            transaction.set_rollback(True)
            raise JobClaimLost(f"Batch job {job.uuid} is no longer run by attempt {job.attempts}.")
    job.progress, job.progress_message, job.heartbeat_at = fraction, message, now
    batch.rows_done, batch.rows_failed, batch.provider = rows_done, rows_failed, provider


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _chunk_delay() -> float:
    try:
        return max(0.0, float(os.environ.get(CHUNK_DELAY_ENV, "") or 0))
    except ValueError:
        return 0.0


def run_batch_inference(job: Job, progress: ProgressReporter) -> dict[str, Any]:
    """Run a claimed batch job from ``rows_done`` on, chunk by chunk, then join the results; the job's result.

    Each chunk's results are written as one part, then ``rows_done`` is saved (``_commit_chunk``): an attempt that
    restarts after a crash resumes at ``rows_done`` and no row is written twice. Raises ``JobClaimLost`` when the
    job was cancelled or taken over; any other exception fails the job with the results so far kept.
    """
    batch = BatchInference.objects.select_related("version__model__organization", "deployment").get(job=job)
    params = job.params or {}
    fmt = params.get("format", batch.input_format)
    progress(
        batch.rows_done / batch.rows_total if batch.rows_total else 0.0,
        f"resuming at row {batch.rows_done} of {batch.rows_total}" if batch.rows_done else "loading the model",
    )
    loaded = load_version(batch.version, provider=params.get("provider") or Provider.AUTO)
    batched = batch_axis(loaded.signature)
    include_outputs = bool(params.get("include_outputs", True))
    delay = _chunk_delay()
    started = time.perf_counter()
    rows_done, rows_failed = batch.rows_done, batch.rows_failed
    started_at_row = rows_done
    if rows_done < batch.rows_total:
        for chunk in _chunks(iter_rows(batch, params, start=rows_done), batch.chunk_size):
            if delay:
                time.sleep(delay)
            results = run_chunk(loaded, chunk, time_limit=float(job.time_limit), readable=fmt != BatchFormat.NPZ)
            number = chunk[0].index // batch.chunk_size
            if fmt == BatchFormat.NPZ:
                content = _npz_part(results, batched)
            else:
                content = b"".join(_json_line(result, include_outputs) for result in results)
            _save_exactly(part_name(job, number, fmt), io.BytesIO(content))
            failed = sum(result.error is not None for result in results)
            _commit_chunk(
                job,
                batch,
                before=rows_done,
                rows_done=rows_done + len(chunk),
                rows_failed=rows_failed + failed,
                provider=loaded.provider,
            )
            rows_done, rows_failed = batch.rows_done, batch.rows_failed
    if rows_done != batch.rows_total:
        raise RuntimeError(f"The file has {rows_done} rows now, {batch.rows_total} when it was uploaded.")
    output = _finish_results(job, batch, fmt)
    return {
        "rows_total": batch.rows_total,
        "rows_done": rows_done,
        "rows_failed": rows_failed,
        "provider": loaded.provider or batch.provider,
        "format": fmt,
        "output": output,
        "started_at_row": started_at_row,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _finish_results(job: Job, batch: BatchInference, fmt: str) -> str:
    """Join the parts into the results file, record it (this attempt still owning the job), remove the parts."""
    if batch.output_file:
        return batch.output_file.name  # joined by an attempt that crashed before recording its outcome
    name = results_name(job, fmt)
    with tempfile.TemporaryFile() as joined:
        write_results(job, batch, joined, fmt=fmt)
        joined.seek(0)
        _save_exactly(name, File(joined))
    with transaction.atomic():
        owned = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts).update(
            heartbeat_at=timezone.now()
        )
        if not owned:
            transaction.set_rollback(True)
            raise JobClaimLost(f"Batch job {job.uuid} is no longer run by attempt {job.attempts}.")
        BatchInference.objects.filter(pk=batch.pk).update(output_file=name)
    batch.output_file.name = name
    for number in range(part_count(batch)):
        default_storage.delete(part_name(job, number, fmt))
    return name
