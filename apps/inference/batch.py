"""Batch jobs: a JSONL, CSV or NPZ file of rows in, a file of results out, run as ONE job in chunks of rows.

Upload side (``start_batch_inference``): the file is checked for what can be checked up front without loading it
(its size, that it is not empty, that its content is the format named, that a CSV header or the first JSON row
names the model's inputs, that an NPZ's arrays are the model's inputs with one length along axis 0) and its rows
are counted by streaming it; then the Job (kind ``inference.batch``) and its ``BatchInference`` row are written and
the task is sent when the transaction commits. Each of those refusals is a Django ``ValidationError`` naming the
field (``file``, ``format``, ``file.<array>``): a 400.

Worker side (``run_batch_inference``, called by ``apps.inference.batch_tasks``): the rows are read again from the
stored file, ``chunk_size`` at a time. A chunk's rows are validated one by one (a row that fails is that row's
error, ``rows_failed`` + 1, and the job goes on), merged into one model run (``merge_batch``) when the model has a
batch axis, else run one by one, split back and post-processed row by row. The chunk's results are written as one
*part* of the results file, then ``rows_done`` (and the job's progress and heartbeat) are saved in one transaction,
conditional on this attempt still owning the job. A part is named after its chunk's number, and chunks always start
at multiples of ``chunk_size``: an attempt that restarts after a crash resumes at ``rows_done``, rewrites the part a
crashed attempt may have left half-written, and no row is ever in the results twice. When every row is done, the
parts are joined into one results file (``BatchInference.output_file``) and removed.

Results: JSONL inputs and CSV inputs give JSON Lines, one line per row in row order: ``{"row": i, "outputs": {...},
"answer": ...}`` or ``{"row": i, "error": {"<field>": ["<message>"]}}``. NPZ inputs give an ``.npz`` of each tensor
output stacked over the rows (rows that failed hold NaN, 0, False or ""), ``row_failed`` (bool per row),
``failed_rows`` and ``failed_errors`` (the JSON error of each failed row). ``open_results`` gives what is done so
far at any time: partial results while the job runs and after it failed.

Test hook: ``GPUX_BATCH_CHUNK_DELAY_SECONDS`` in a worker's environment makes it sleep that long before each chunk,
so that a test can kill a worker mid-job. It is not a setting; leave it unset anywhere else.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import IO, Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from apps.core.errors import field_error, field_errors
from apps.core.job_services import JobClaimLost, ProgressReporter, start_job
from apps.core.jobs import Job, JobStatus
from apps.inference.execution import load_version, manifest_of, prepare_inputs, run_version
from apps.inference.models import BatchFormat, BatchInference, Device, Provider
from apps.inference.predictions import READABLE_KEYS, require_runnable
from apps.inference.runtime.codecs import TensorCodecError, decode_inputs, decode_npz, encode_outputs
from apps.inference.runtime.sessions import RunTimeLimitExceeded
from apps.inference.runtime.validation import (
    InputValidationError,
    batch_axis,
    merge_batch,
    split_batch,
    validate_inputs,
)
from apps.marketplace.models import ModelVersion

logger = logging.getLogger(__name__)

BATCH_KIND = "inference.batch"
DEFAULT_CHUNK_SIZE = 32
MAX_CHUNK_SIZE = 4096
FORMAT_BY_SUFFIX = {
    ".jsonl": BatchFormat.JSONL,
    ".ndjson": BatchFormat.JSONL,
    ".csv": BatchFormat.CSV,
    ".npz": BatchFormat.NPZ,
}
RESULTS_DIR = "inference/batch-results"
CHUNK_DELAY_ENV = "GPUX_BATCH_CHUNK_DELAY_SECONDS"
# Keys of an NPZ results file besides the outputs.
ROW_FAILED, FAILED_ROWS, FAILED_ERRORS = "row_failed", "failed_rows", "failed_errors"


def max_batch_file_bytes() -> int:
    """The largest batch file accepted (``INFERENCE_MAX_BATCH_FILE_BYTES``, default 64 × the request limit)."""
    return int(getattr(settings, "INFERENCE_MAX_BATCH_FILE_BYTES", 0) or settings.INFERENCE_MAX_REQUEST_BYTES * 64)


def batch_time_limit() -> int:
    """Seconds one attempt of a batch job may run (``INFERENCE_BATCH_TIME_LIMIT_SECONDS``)."""
    return int(getattr(settings, "INFERENCE_BATCH_TIME_LIMIT_SECONDS", 3600))


# --- the model's inputs, as a batch file sees them ---------------------------------------------------------------


def _inputs_of(version: ModelVersion) -> list[dict[str, Any]]:
    return [entry for entry in (version.signature or {}).get("inputs") or [] if entry.get("name")]


def _readable_keys_of(version: ModelVersion) -> set[str]:
    """The readable inputs the version's gpux.yml declares: ``text`` (a tokenizer), ``image`` (a resize)."""
    preprocessing = manifest_of(version).get("preprocessing") or {}
    keys = set()
    if preprocessing.get("tokenizer"):
        keys.add("text")
    if preprocessing.get("resize"):
        keys.add("image")
    return keys


def _shape_text(shape: Any) -> str:
    if not isinstance(shape, list):
        return "any shape"
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def _vector_input(inputs: list[dict[str, Any]]) -> tuple[str, int] | None:
    """(name, k) when the model has one numeric input of shape [batch, k] with k fixed: a CSV row is k numbers."""
    if len(inputs) != 1:
        return None
    entry = inputs[0]
    shape = entry.get("shape")
    kind = str(entry.get("elem_type") or "")
    numeric = kind.startswith(("float", "int", "uint", "double")) or kind == "bool"
    if not numeric or not isinstance(shape, list) or len(shape) != 2 or not isinstance(shape[1], int):
        return None
    if isinstance(shape[0], int) and shape[0] != 1:
        return None
    return entry["name"], shape[1]


# --- reading a file's rows (the upload's count and the worker's run read them the same way) ----------------------


def _decoded_lines(binary: Iterable[bytes]) -> Iterator[str]:
    """Text lines (UTF-8, a leading BOM dropped) of a binary file, their line endings kept (csv needs them)."""
    for number, line in enumerate(binary, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise field_error(
                "file", f"line {number} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
            ) from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def jsonl_lines(binary: Iterable[bytes]) -> Iterator[bytes]:
    """The rows of a JSON Lines file: every line that is not blank, in order."""
    for line in binary:
        if line.strip():
            yield line


def csv_records(binary: Iterable[bytes]) -> Iterator[list[str]]:
    """The records of a CSV file (the header first), blank lines left out; errors name ``file`` and the line."""
    reader = csv.reader(_decoded_lines(binary))
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise field_error("file", f"line {reader.line_num}: not CSV the reader understands ({exc})") from None
        if record:
            yield record


def _open_binary(uploaded: Any) -> Any:
    uploaded.seek(0)
    return uploaded


# --- checking a file at upload ------------------------------------------------------------------------------------


@dataclass
class InspectedFile:
    """What the upload learned about a batch file: its format, how many rows it has, how to read a row."""

    input_format: str
    rows: int
    plan: dict[str, Any] = field(default_factory=dict)


def resolve_format(input_format: str | None, file_name: str) -> str:
    """The format asked for, else the one the file name says (``.jsonl``/``.ndjson``, ``.csv``, ``.npz``)."""
    if input_format:
        value = str(input_format).strip().lower()
        if value not in BatchFormat.values:
            raise field_error(
                "format", f"“{input_format}” is not a batch format; use one of {', '.join(BatchFormat.values)}."
            )
        return value
    suffix = PurePath(file_name or "").suffix.lower()
    if suffix in FORMAT_BY_SUFFIX:
        return FORMAT_BY_SUFFIX[suffix]
    raise field_error(
        "format",
        f"The file name “{file_name}” does not say its format; send format = jsonl, csv or npz.",
        code="required",
    )


def inspect_batch_file(version: ModelVersion, uploaded: Any, input_format: str) -> InspectedFile:
    """Check a batch file against the version's inputs without loading it whole, and count its rows.

    Raises Django ``ValidationError`` naming the field (``file``, ``file.<array>``) for an empty or oversized file,
    content that is not the format named, a CSV header or a first JSON row that names none of the model's inputs,
    an NPZ whose arrays are not the model's inputs or differ in length.
    """
    limit = max_batch_file_bytes()
    size = getattr(uploaded, "size", None)
    if size is not None and size > limit:
        raise field_error("file", f"The file is {size} bytes, over the limit of {limit} bytes.", code="too_large")
    if not size:
        raise field_error("file", "The file is empty; send at least one row.", code="empty")
    if input_format == BatchFormat.JSONL:
        inspected = _inspect_jsonl(version, uploaded)
    elif input_format == BatchFormat.CSV:
        inspected = _inspect_csv(version, uploaded)
    else:
        inspected = _inspect_npz(version, uploaded)
    if inspected.rows == 0:
        what = "a header and no rows" if input_format == BatchFormat.CSV else "no rows"
        raise field_error("file", f"The file has {what}; send at least one row.", code="empty")
    return inspected


def _inspect_jsonl(version: ModelVersion, uploaded: Any) -> InspectedFile:
    names = {entry["name"] for entry in _inputs_of(version)}
    rows = 0
    for line in jsonl_lines(_open_binary(uploaded)):
        if rows == 0:
            _check_first_json_row(line, names)
        rows += 1
    return InspectedFile(BatchFormat.JSONL, rows, {})


def _check_first_json_row(line: bytes, names: set[str]) -> None:
    if line.lstrip()[:2] == b"PK":
        raise field_error("file", "This is a zip archive (an .npz?), not JSON Lines; send format = npz.")
    try:
        row = json.loads(line)
    except UnicodeDecodeError:
        raise field_error("file", "Row 0 is not UTF-8 text; JSON Lines must be UTF-8.") from None
    except ValueError as exc:
        hint = " It looks like CSV: send format = csv." if b"," in line and not line.lstrip().startswith(b"{") else ""
        raise field_error("file", f"Row 0 is not JSON ({exc}); each line must be one JSON object.{hint}") from None
    if not isinstance(row, dict):
        raise field_error("file", f"Row 0 is a JSON {type(row).__name__}; each line must be one JSON object.")
    inputs = row["inputs"] if isinstance(row.get("inputs"), dict) and "inputs" not in names else row
    if not set(inputs) & (names | READABLE_KEYS):
        keys = ", ".join(sorted(map(str, inputs))) or "(none)"
        raise field_error(
            "file",
            f"Row 0 names no input of the model (it has {keys}); the model's inputs are {', '.join(sorted(names))} "
            "(or “text” / “image” where its gpux.yml reads them).",
            code="no_input",
        )


def _inspect_csv(version: ModelVersion, uploaded: Any) -> InspectedFile:
    records = csv_records(_open_binary(uploaded))
    try:
        header = next(records)
    except StopIteration:
        raise field_error(
            "file", "The file has no CSV header; the first line names the columns.", code="empty"
        ) from None
    plan = csv_plan(version, [cell.strip() for cell in header])
    rows = sum(1 for _ in records)
    return InspectedFile(BatchFormat.CSV, rows, plan)


def csv_plan(version: ModelVersion, header: list[str]) -> dict[str, Any]:
    """How a CSV row becomes the model's inputs, from its header:

    * ``columns``: columns named after inputs, each cell one input's value (a number, or a JSON list); other
      columns are left out (and listed in ``ignored``);
    * ``readable``: a ``text`` (or ``image``) column, for a model whose gpux.yml reads text (images);
    * ``vector``: a model with one input of shape [batch, k] and a header of k columns: the row's k numbers.
    """
    inputs = _inputs_of(version)
    names = [entry["name"] for entry in inputs]
    if header and header[0].startswith("{"):
        raise field_error("file", "This looks like JSON Lines, not CSV; send format = jsonl.")
    duplicates = sorted({cell for cell in header if header.count(cell) > 1})
    if duplicates:
        raise field_error("file", f"The CSV header names column “{duplicates[0]}” more than once.")
    named = [name for name in names if name in header]
    if named:
        missing = [name for name in names if name not in header]
        if missing:
            raise field_error(
                "file",
                f"The CSV has no column for the model's input{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}; every input needs a column.",
            )
        return {
            "mode": "columns",
            "columns": {name: header.index(name) for name in names},
            "ignored": [cell for cell in header if cell not in names],
            "width": len(header),
        }
    readable = [key for key in ("text", "image") if key in header and key in _readable_keys_of(version)]
    if readable:
        key = readable[0]
        return {
            "mode": "readable",
            "key": key,
            "column": header.index(key),
            "ignored": [cell for cell in header if cell != key],
            "width": len(header),
        }
    vector = _vector_input(inputs)
    if vector is not None and len(header) == vector[1]:
        return {"mode": "vector", "input": vector[0], "header": header, "width": len(header)}
    columns = ", ".join(f"“{cell}”" for cell in header) or "(none)"
    hint = f"name a column after each input ({', '.join(names)})"
    if vector is not None:
        hint += f", or give exactly {vector[1]} columns of numbers for {vector[0]} (shape [batch, {vector[1]}])"
    if _readable_keys_of(version):
        hint += ", or a “text” column"
    raise field_error("file", f"The CSV header ({columns}) names no input of the model; {hint}.", code="no_input")


def _inspect_npz(version: ModelVersion, uploaded: Any) -> InspectedFile:
    inputs = {entry["name"]: entry for entry in _inputs_of(version)}
    limit = max_batch_file_bytes()
    binary = _open_binary(uploaded)
    try:
        archive = zipfile.ZipFile(binary.file if hasattr(binary, "file") else binary)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise field_error(
            "file", "This is not an .npz (zip) archive; send format = jsonl or csv for text files."
        ) from None
    lengths: dict[str, int] = {}
    plan: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    total = 0
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if not members:
            raise field_error("file", "The .npz archive holds no arrays.", code="empty")
        for info in members:
            name = info.filename.removesuffix(".npy")
            key = f"file.{name}"
            total += info.file_size
            if total > limit:
                raise field_error(
                    key, f"The arrays declare over {limit} bytes uncompressed, the limit.", code="too_large"
                )
            if name not in inputs:
                hint = " (send texts as JSONL or CSV)" if name in READABLE_KEYS else ""
                problems.setdefault(key, []).append(f"unknown input; the model's inputs are {', '.join(inputs)}{hint}")
                continue
            try:
                shape, dtype = _npy_header(archive, info)
            except ValueError as exc:
                problems.setdefault(key, []).append(f"not a .npy array: {exc}")
                continue
            if dtype.hasobject:
                problems.setdefault(key, []).append("object arrays are refused (they would need unpickling)")
                continue
            if not shape:
                problems.setdefault(key, []).append("a scalar has no rows; put the rows along axis 0")
                continue
            declared = inputs[name].get("shape")
            rank = len(declared) if isinstance(declared, list) else len(shape)
            if len(shape) == rank:
                plan[name] = "slice"
            elif len(shape) == rank + 1:
                plan[name] = "index"
            else:
                problems.setdefault(key, []).append(
                    f"shape {list(shape)} does not fit the input's shape {_shape_text(declared)} with rows along axis 0"
                )
                continue
            lengths[name] = int(shape[0])
    for name in inputs:
        if name not in lengths and f"file.{name}" not in problems:
            problems[f"file.{name}"] = [f"required input is missing; the model's inputs are {', '.join(inputs)}"]
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        for name, length in lengths.items():
            if length != lengths[first]:
                problems.setdefault(f"file.{name}", []).append(
                    f"{length} rows along axis 0, but file.{first} has {lengths[first]}; every array needs the same "
                    "number of rows"
                )
    if problems:
        raise field_errors(problems, code="invalid")
    return InspectedFile(BatchFormat.NPZ, next(iter(lengths.values()), 0), {"arrays": plan})


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
    return tuple(int(size) for size in shape), dtype


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
        row = json.loads(line)
    except UnicodeDecodeError:
        raise RowRefused({"row": ["not UTF-8 text"]}) from None
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
        return json.loads(cell)
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
    names = {entry["name"] for entry in _inputs_of(batch.version)}
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


def _mergeable(a: dict[str, np.ndarray], b: dict[str, np.ndarray], pad: bool) -> bool:
    if a.keys() != b.keys():
        return False
    for name in a:
        if a[name].dtype != b[name].dtype or a[name].ndim != b[name].ndim:
            return False
        if not pad and a[name].shape[1:] != b[name].shape[1:]:
            return False
    return True


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
                if _mergeable(group[0][1], item[1], pad):
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


# --- the worker: results parts, resumable ------------------------------------------------------------------------


def results_directory(job: Job) -> str:
    return f"{RESULTS_DIR}/{job.uuid}"


def part_name(job: Job, number: int, fmt: str) -> str:
    """The storage name of chunk ``number``'s results (rows number × chunk_size onwards)."""
    return f"{results_directory(job)}/part-{number:08d}.{'npz' if fmt == BatchFormat.NPZ else 'jsonl'}"


def results_name(job: Job, fmt: str) -> str:
    return f"{results_directory(job)}/results.{'npz' if fmt == BatchFormat.NPZ else 'jsonl'}"


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


def _part_count(batch: BatchInference, rows_done: int | None = None) -> int:
    done = batch.rows_done if rows_done is None else rows_done
    return math.ceil(done / batch.chunk_size) if batch.chunk_size else 0


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
    for number in range(_part_count(batch)):
        default_storage.delete(part_name(job, number, fmt))
    return name


# --- reading results (the download, partial or whole) --------------------------------------------------------------


def write_results(job: Job, batch: BatchInference, target: IO[bytes], *, fmt: str, rows_done: int | None = None):
    """Write the results of the first ``rows_done`` rows (the batch's, by default) to ``target`` from the parts."""
    count = _part_count(batch, rows_done)
    if fmt != BatchFormat.NPZ:
        for number in range(count):
            with default_storage.open(part_name(job, number, fmt), "rb") as part:
                for piece in part.chunks():
                    target.write(piece)
        return
    _write_npz_results([part_name(job, number, fmt) for number in range(count)], target)


def _load_part(name: str) -> dict[str, np.ndarray]:
    with default_storage.open(name, "rb") as part, np.load(io.BytesIO(part.read()), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _fill_value(dtype: np.dtype) -> Any:
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind in "US":
        return ""
    return 0


def _write_npz_results(parts: list[str], target: IO[bytes]) -> None:
    """One .npz from the parts, each output written member by member (one part in memory at a time)."""
    outputs: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    rows = 0
    failed_rows: list[int] = []
    failed_errors: list[str] = []
    for name in parts:  # first pass: every output's dtype and row shape, the failed rows
        part = _load_part(name)
        rows += len(part["__rows__"]) + len(part["__failed__"])
        failed_rows.extend(int(index) for index in part["__failed__"])
        failed_errors.extend(str(error) for error in part["__errors__"])
        for key, value in part.items():
            if not key.startswith("out."):
                continue
            output = key[4:]
            if output in outputs:
                dtype, shape = outputs[output]
                if shape != value.shape[1:]:
                    raise ValueError(
                        f"outputs.{output}: rows have shapes {list(shape)} and {list(value.shape[1:])}; they cannot "
                        "be stacked into one array (send the rows as JSONL to get each row's outputs)"
                    )
                outputs[output] = (np.result_type(dtype, value.dtype), shape)
            else:
                outputs[output] = (value.dtype, value.shape[1:])
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for output, (dtype, shape) in outputs.items():
            with archive.open(f"{output}.npy", "w", force_zip64=True) as member:
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (rows, *shape)}
                np.lib.format.write_array_header_2_0(member, header)
                for name in parts:
                    part = _load_part(name)
                    count = len(part["__rows__"]) + len(part["__failed__"])
                    first = min([*part["__rows__"].tolist(), *part["__failed__"].tolist()])
                    block = np.full((count, *shape), _fill_value(dtype), dtype=dtype)
                    if f"out.{output}" in part:
                        block[part["__rows__"] - first] = part[f"out.{output}"]
                    member.write(np.ascontiguousarray(block).tobytes())
        row_failed = np.zeros(rows, dtype=np.bool_)
        row_failed[np.asarray(failed_rows, dtype=np.int64)] = True
        for key, value in (
            (ROW_FAILED, row_failed),
            (FAILED_ROWS, np.asarray(failed_rows, dtype=np.int64)),
            (FAILED_ERRORS, np.asarray(failed_errors, dtype=np.str_)),
        ):
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, value, allow_pickle=False)


@dataclass
class Results:
    """What a download sends: a file to stream, its name and type, and how many rows it holds."""

    file: IO[bytes]
    filename: str
    content_type: str
    rows: int
    complete: bool


def open_results(job: Job, batch: BatchInference) -> Results:
    """The results so far: the joined file when the job has one, else the parts of the rows done (while it runs,
    and after it failed), joined now into a temporary file."""
    fmt = batch.input_format
    stem = PurePath(batch.input_name or "rows").stem or "rows"
    content_type = "application/x-npz" if fmt == BatchFormat.NPZ else "application/x-ndjson"
    filename = f"{stem}-results.{'npz' if fmt == BatchFormat.NPZ else 'jsonl'}"
    for _attempt in range(3):
        batch.refresh_from_db(fields=["output_file", "rows_done", "rows_failed"])
        if batch.output_file:
            return Results(
                default_storage.open(batch.output_file.name, "rb"), filename, content_type, batch.rows_done, True
            )
        joined = tempfile.TemporaryFile()  # noqa: SIM115 -- handed to the response, which closes it
        try:
            write_results(job, batch, joined, fmt=fmt, rows_done=batch.rows_done)
        except FileNotFoundError:
            joined.close()  # the job just joined its parts into the results file and removed them: read that
            continue
        joined.seek(0)
        return Results(joined, filename, content_type, batch.rows_done, False)
    raise FileNotFoundError(f"The results of batch job {job.uuid} moved while being read; ask again.")


@receiver(post_delete, sender=BatchInference, dispatch_uid="inference.batch.delete_files")
def delete_batch_files(sender: type[BatchInference], instance: BatchInference, **kwargs: Any) -> None:
    """A deleted batch job (its Job deleted) takes its rows, its results and any parts left with it, once the
    deletion is committed. The job's uuid is the stored input's name, so the parts' folder is found without the
    Job row, which the same cascade deletes."""
    stem = PurePath(instance.input_file.name or "").stem
    names = [name for name in (instance.input_file.name, instance.output_file.name) if name]
    folder = f"{RESULTS_DIR}/{stem}" if stem else ""

    def delete() -> None:
        for name in names:
            default_storage.delete(name)
        if folder and default_storage.exists(folder):
            for name in default_storage.listdir(folder)[1]:
                default_storage.delete(f"{folder}/{name}")

    transaction.on_commit(delete)
