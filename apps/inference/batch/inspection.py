"""Checking a batch file at upload, without loading it whole: its format, that it is not empty or too large,
that its header, first row or arrays name the model's inputs; and counting its rows."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from apps.core.errors import Problems, field_error
from apps.core.parsing import InvalidText, NestingTooDeep, loads_json
from apps.inference.batch.formats import (
    FORMAT_BY_SUFFIX,
    csv_records,
    inputs_of,
    jsonl_lines,
    max_batch_file_bytes,
    open_binary,
    readable_keys_of,
    vector_input,
)
from apps.inference.models import BatchFormat
from apps.inference.predictions import READABLE_KEYS
from apps.inference.runtime.signature import shape_text
from apps.marketplace.models import ModelVersion

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
    names = {entry["name"] for entry in inputs_of(version)}
    rows = 0
    for line in jsonl_lines(open_binary(uploaded)):
        if rows == 0:
            _check_first_json_row(line, names)
        rows += 1
    return InspectedFile(BatchFormat.JSONL, rows, {})


def _check_first_json_row(line: bytes, names: set[str]) -> None:
    if line.lstrip()[:2] == b"PK":
        raise field_error("file", "This is a zip archive (an .npz?), not JSON Lines; send format = npz.")
    try:
        row = loads_json(line)
    except UnicodeDecodeError:
        raise field_error("file", "Row 0 is not UTF-8 text; JSON Lines must be UTF-8.") from None
    except (NestingTooDeep, InvalidText) as exc:
        raise field_error("file", f"Row 0 is not usable: {exc}.") from None
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
    records = csv_records(open_binary(uploaded))
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
    inputs = inputs_of(version)
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
    readable = [key for key in ("text", "image") if key in header and key in readable_keys_of(version)]
    if readable:
        key = readable[0]
        return {
            "mode": "readable",
            "key": key,
            "column": header.index(key),
            "ignored": [cell for cell in header if cell != key],
            "width": len(header),
        }
    vector = vector_input(inputs)
    if vector is not None and len(header) == vector[1]:
        return {"mode": "vector", "input": vector[0], "header": header, "width": len(header)}
    columns = ", ".join(f"“{cell}”" for cell in header) or "(none)"
    hint = f"name a column after each input ({', '.join(names)})"
    if vector is not None:
        hint += f", or give exactly {vector[1]} columns of numbers for {vector[0]} (shape [batch, {vector[1]}])"
    if readable_keys_of(version):
        hint += ", or a “text” column"
    raise field_error("file", f"The CSV header ({columns}) names no input of the model; {hint}.", code="no_input")


def _inspect_npz(version: ModelVersion, uploaded: Any) -> InspectedFile:
    inputs = {entry["name"]: entry for entry in inputs_of(version)}
    limit = max_batch_file_bytes()
    binary = open_binary(uploaded)
    try:
        archive = zipfile.ZipFile(binary.file if hasattr(binary, "file") else binary)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise field_error(
            "file", "This is not an .npz (zip) archive; send format = jsonl or csv for text files."
        ) from None
    lengths: dict[str, int] = {}
    plan: dict[str, str] = {}
    problems = Problems()
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
                problems.add(key, f"unknown input; the model's inputs are {', '.join(inputs)}{hint}")
                continue
            try:
                shape, dtype = _npy_header(archive, info)
            except ValueError as exc:
                problems.add(key, f"not a .npy array: {exc}")
                continue
            if dtype.hasobject:
                problems.add(key, "object arrays are refused (they would need unpickling)")
                continue
            if not shape:
                problems.add(key, "a scalar has no rows; put the rows along axis 0")
                continue
            declared = inputs[name].get("shape")
            rank = len(declared) if isinstance(declared, list) else len(shape)
            if len(shape) == rank:
                plan[name] = "slice"
            elif len(shape) == rank + 1:
                plan[name] = "index"
            else:
                problems.add(
                    key,
                    f"shape {list(shape)} does not fit the input's shape {shape_text(declared)} with rows along axis 0",
                )
                continue
            lengths[name] = int(shape[0])
    for name in inputs:
        if name not in lengths and f"file.{name}" not in problems.errors:
            problems.add(f"file.{name}", f"required input is missing; the model's inputs are {', '.join(inputs)}")
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        for name, length in lengths.items():
            if length != lengths[first]:
                problems.add(
                    f"file.{name}",
                    f"{length} rows along axis 0, but file.{first} has {lengths[first]}; every array needs the same "
                    "number of rows",
                )
    problems.raise_if_any()
    return InspectedFile(BatchFormat.NPZ, next(iter(lengths.values()), 0), {"arrays": plan})


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
    return tuple(int(size) for size in shape), dtype
