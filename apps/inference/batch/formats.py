"""What a batch file is: its formats, its size limit, the model's inputs as a file names them, and its rows
read the same way by the upload's count and the worker's run."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings

from apps.core.errors import field_error
from apps.inference.execution import manifest_of
from apps.inference.models import BatchFormat
from apps.marketplace.models import ModelVersion

FORMAT_BY_SUFFIX = {
    ".jsonl": BatchFormat.JSONL,
    ".ndjson": BatchFormat.JSONL,
    ".csv": BatchFormat.CSV,
    ".npz": BatchFormat.NPZ,
}


def max_batch_file_bytes() -> int:
    """The largest batch file accepted (``INFERENCE_MAX_BATCH_FILE_BYTES``, default 64 × the request limit)."""
    return int(getattr(settings, "INFERENCE_MAX_BATCH_FILE_BYTES", 0) or settings.INFERENCE_MAX_REQUEST_BYTES * 64)


# --- the model's inputs, as a batch file sees them ---------------------------------------------------------------


def inputs_of(version: ModelVersion) -> list[dict[str, Any]]:
    return [entry for entry in (version.signature or {}).get("inputs") or [] if entry.get("name")]


def readable_keys_of(version: ModelVersion) -> set[str]:
    """The readable inputs the version's gpux.yml declares: ``text`` (a tokenizer), ``image`` (a resize)."""
    preprocessing = manifest_of(version).get("preprocessing") or {}
    keys = set()
    if preprocessing.get("tokenizer"):
        keys.add("text")
    if preprocessing.get("resize"):
        keys.add("image")
    return keys


def vector_input(inputs: list[dict[str, Any]]) -> tuple[str, int] | None:
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


def open_binary(uploaded: Any) -> Any:
    uploaded.seek(0)
    return uploaded
