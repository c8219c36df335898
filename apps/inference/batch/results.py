"""A batch job's results: where its parts and results file are stored, joining them (JSON Lines or one .npz),
and opening what is done so far for a download; the files go with their job."""

from __future__ import annotations

import io
import math
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.core.jobs import Job
from apps.inference.models import BatchFormat, BatchInference

RESULTS_DIR = "inference/batch-results"
# Keys of an NPZ results file besides the outputs.
ROW_FAILED, FAILED_ROWS, FAILED_ERRORS = "row_failed", "failed_rows", "failed_errors"


# --- where a job's results are stored ------------------------------------------------------------------------------


def results_directory(job: Job) -> str:
    return f"{RESULTS_DIR}/{job.uuid}"


def part_name(job: Job, number: int, fmt: str) -> str:
    """The storage name of chunk ``number``'s results (rows number × chunk_size onwards)."""
    return f"{results_directory(job)}/part-{number:08d}.{'npz' if fmt == BatchFormat.NPZ else 'jsonl'}"


def results_name(job: Job, fmt: str) -> str:
    return f"{results_directory(job)}/results.{'npz' if fmt == BatchFormat.NPZ else 'jsonl'}"


def part_count(batch: BatchInference, rows_done: int | None = None) -> int:
    done = batch.rows_done if rows_done is None else rows_done
    return math.ceil(done / batch.chunk_size) if batch.chunk_size else 0


# --- reading results (the download, partial or whole) --------------------------------------------------------------


def write_results(job: Job, batch: BatchInference, target: IO[bytes], *, fmt: str, rows_done: int | None = None):
    """Write the results of the first ``rows_done`` rows (the batch's, by default) to ``target`` from the parts."""
    count = part_count(batch, rows_done)
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
