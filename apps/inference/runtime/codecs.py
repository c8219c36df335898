"""Tensor codecs: request ``inputs`` to NumPy arrays, and model outputs back to JSON, base64, ``.npy`` or ``.npz``.

A tensor in a request is one of

* a JSON number, boolean or string, or nested lists of them (``[[1, 2], [3, 4]]``): numbers decode to
  ``float64`` (``int64`` when every one is an integer), booleans to ``bool``, strings to an object array of
  ``str``; inside numeric lists the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` stand for the
  values JSON cannot spell;
* ``{"b64": "<base64 of the raw little-endian buffer>", "dtype": "float32", "shape": [1, 4]}``;
* ``{"npy": "<base64 of a .npy file>"}``.

Decoding is only about the wire format: :mod:`apps.inference.runtime.validation` then checks the arrays
against the model's signature and casts them to the exact types it wants. Every size is checked against
``max_bytes`` *before* the bytes are produced (base64 text, ``.npy`` headers, zip members' declared sizes),
and nothing is ever unpickled.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import zipfile
from typing import Any

import numpy as np

from apps.core.errors import Problems
from apps.inference.runtime.signature import shape_text

ENCODINGS = ("json", "b64", "npy")

# JSON cannot spell these; clients send them as strings inside numeric lists (what JavaScript's
# ``String(NaN)`` gives), and outputs use the same spelling.
NON_FINITE_SPELLINGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# Element types a raw (b64) buffer may declare. Strings have no fixed-width buffer form: send them as JSON.
RAW_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name)
    for name in (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
    )
}

# More dimensions than any model here uses, and fewer than NumPy's own limit (64).
MAX_RANK = 32

_TENSOR_KEYS = {"b64": ("b64", "dtype", "shape"), "npy": ("npy",)}
_NPY_KINDS = set("biufU")  # bool, ints, unsigned ints, floats, unicode strings; never objects or records
_INT64 = np.iinfo(np.int64)
_UINT64 = np.iinfo(np.uint64)


class TensorCodecError(ValueError):
    """A tensor that could not be decoded or encoded.

    ``errors`` maps a field path (``inputs.x``, ``file.x``, ``encoding``) to its messages, as DRF does;
    ``code`` is a stable short string (``invalid``, ``undecodable``, ``ragged``, ``unsupported_dtype``,
    ``shape_mismatch``, ``pickle_refused``, ``too_large``) for the first problem, and ``codes`` has one
    per message.
    """

    def __init__(self, errors: dict[str, list[str]], code: str, codes: dict[str, list[str]] | None = None):
        self.errors = errors
        self.code = code
        self.codes = codes or {key: [code] * len(messages) for key, messages in errors.items()}
        super().__init__("; ".join(f"{key}: {message}" for key, messages in errors.items() for message in messages))


class _Refused(Exception):
    """Internal: one tensor's problem, turned into a TensorCodecError entry by the caller."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


class _Budget:
    """What is left of ``max_bytes`` across all the tensors of one request."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0

    def check(self, nbytes: int, what: str) -> None:
        """Refuse ``nbytes`` more than what is left, without counting them."""
        if self.used + nbytes > self.max_bytes:
            raise _Refused(
                f"{what} would decode to {nbytes} bytes, over the limit of {self.max_bytes} bytes"
                + (f" for all inputs ({self.used} already used)" if self.used else ""),
                "too_large",
            )

    def take(self, nbytes: int, what: str) -> None:
        """Refuse, or count, ``nbytes`` more."""
        self.check(nbytes, what)
        self.used += nbytes

    @property
    def left(self) -> int:
        return max(self.max_bytes - self.used, 0)


# Decoding -------------------------------------------------------------------------------------------------


def decode_inputs(payload: Any, *, max_bytes: int, field: str = "inputs") -> dict[str, np.ndarray]:
    """Decode a request's ``inputs`` (a JSON object name -> tensor) into NumPy arrays.

    Raises :class:`TensorCodecError` naming ``inputs.<name>`` and the reason for every tensor that cannot
    be decoded; decoding stops at the first tensor that would take the total over ``max_bytes``.
    """
    if not isinstance(payload, dict):
        raise TensorCodecError(
            {field: [f"expected an object mapping input names to tensors, received {json_kind(payload)}"]},
            "invalid",
        )
    if not payload:
        raise TensorCodecError({field: ["no inputs given"]}, "invalid")
    problems = Problems()
    budget = _Budget(max_bytes)
    arrays: dict[str, np.ndarray] = {}
    for name, value in payload.items():
        key = f"{field}.{name}"
        try:
            arrays[name] = _decode_tensor(value, budget)
        except _Refused as refused:
            problems.add(key, refused.message, refused.code)
            if refused.code == "too_large":
                break  # the budget is spent: decoding the rest would only allocate more
    problems.raise_if_any(TensorCodecError)
    return arrays


def decode_npy(data: bytes, *, max_bytes: int, field: str) -> np.ndarray:
    """Decode the bytes of one ``.npy`` file, never unpickling: object and record dtypes are refused, and
    the size the header declares is checked against ``max_bytes`` before the data is read."""
    try:
        return _decode_npy(data, _Budget(max_bytes))
    except _Refused as refused:
        raise TensorCodecError({field: [refused.message]}, refused.code) from None


def decode_npz(data: bytes, *, max_bytes: int, field: str = "file") -> dict[str, np.ndarray]:
    """Decode an ``.npz`` archive (what ``np.savez`` / ``np.savez_compressed`` write) into name -> array.

    Every member's declared uncompressed size is checked against what is left of ``max_bytes`` before the
    member is read, so a zip bomb is refused without inflating it; only stored and deflated members are
    read (Python's zipfile caps their output at the declared size). Errors name ``<field>.<member>``.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise TensorCodecError({field: [f"not an .npz (zip) archive: {error}"]}, "undecodable") from None
    problems = Problems()
    budget = _Budget(max_bytes)
    arrays: dict[str, np.ndarray] = {}
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if not members:
            raise TensorCodecError({field: ["the .npz archive holds no arrays"]}, "invalid")
        for info in members:
            name = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else info.filename
            key = f"{field}.{name}"
            try:
                arrays[name] = _read_npz_member(archive, info, budget)
            except _Refused as refused:
                problems.add(key, refused.message, refused.code)
                if refused.code == "too_large":
                    break
    problems.raise_if_any(TensorCodecError)
    return arrays


def _read_npz_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> np.ndarray:
    if not info.filename.endswith(".npy"):
        raise _Refused(f"member {info.filename!r} is not a .npy file", "invalid")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _Refused(
            f"member {info.filename!r} uses zip compression method {info.compress_type}; "
            "only stored and deflated members are read",
            "undecodable",
        )
    # The declared size bounds what zipfile will produce: checking it first is what stops a zip bomb.
    if info.file_size > budget.left:
        raise _Refused(
            f"member {info.filename!r} declares {info.file_size} bytes uncompressed, over the limit of "
            f"{budget.max_bytes} bytes" + (f" ({budget.used} already used)" if budget.used else ""),
            "too_large",
        )
    try:
        with archive.open(info) as member:
            raw = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as error:
        raise _Refused(f"member {info.filename!r} could not be read: {error}", "undecodable") from None
    if len(raw) != info.file_size:
        raise _Refused(
            f"member {info.filename!r} holds {len(raw)} bytes, its header says {info.file_size}", "undecodable"
        )
    # The member's bytes are already within budget; the array decoded from them is counted instead.
    return _decode_npy(raw, budget)


def _decode_tensor(value: Any, budget: _Budget) -> np.ndarray:
    if isinstance(value, dict):
        return _decode_tensor_object(value, budget)
    return _decode_json_tensor(value, budget)


def _decode_tensor_object(value: dict, budget: _Budget) -> np.ndarray:
    forms = [form for form in _TENSOR_KEYS if form in value]
    if len(forms) != 1:
        raise _Refused(
            'expected a number, a nested list, {"b64", "dtype", "shape"} or {"npy"}; received an object with '
            f"keys {_key_list(value)}",
            "invalid",
        )
    form = forms[0]
    allowed = _TENSOR_KEYS[form]
    unknown = [key for key in value if key not in allowed]
    if unknown:
        raise _Refused(
            f"unknown keys {_key_list(unknown)} in a {form} tensor; allowed: {', '.join(allowed)}", "invalid"
        )
    missing = [key for key in allowed if key not in value]
    if missing:
        raise _Refused(f"a {form} tensor needs {_key_list(missing)}", "invalid")
    if form == "npy":
        text = _b64_text(value["npy"], "the npy data")
        # Only checked: the array the .npy holds is what gets counted, once its header is read.
        budget.check(_b64_length(text), "the npy data")
        return _decode_npy(_b64decode(text), budget)
    return _decode_raw_buffer(value, budget)


def _decode_raw_buffer(value: dict, budget: _Budget) -> np.ndarray:
    dtype_name = value["dtype"]
    if not isinstance(dtype_name, str) or dtype_name not in RAW_DTYPES:
        if dtype_name == "string":
            raise _Refused("string tensors have no raw buffer form; send them as JSON lists of strings", "invalid")
        raise _Refused(
            f"unknown dtype {dtype_name!r}; expected one of {', '.join(RAW_DTYPES)}",
            "unsupported_dtype",
        )
    dtype = RAW_DTYPES[dtype_name]
    shape = _shape_from_json(value["shape"])
    expected = math.prod(shape) * dtype.itemsize
    # Checked before base64 decoding, so a huge declared shape or a huge string costs nothing.
    budget.take(expected, f"shape {shape_text(shape)} of {dtype_name}")
    text = _b64_text(value["b64"], "the b64 data")
    # A string far longer than the shape needs is refused before it is decoded.
    held = _b64_length(text) if len(text) > 4 * math.ceil(expected / 3) else len(_b64decode(text))
    if held != expected:
        raise _Refused(
            f"shape {shape_text(shape)} of {dtype_name} needs {expected} bytes, the b64 data holds {held}",
            "shape_mismatch",
        )
    raw = _b64decode(text)
    array = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)
    # A writable array in native byte order (frombuffer over bytes is read-only).
    return array.astype(dtype, copy=True)


def _shape_from_json(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, list) or any(isinstance(dim, bool) or not isinstance(dim, int) for dim in shape):
        raise _Refused(f"shape must be a list of integers, received {json_kind(shape)}", "invalid")
    if any(dim < 0 for dim in shape):
        raise _Refused(f"shape {shape_text(shape)} has a negative dimension", "invalid")
    if len(shape) > MAX_RANK:
        raise _Refused(f"shape has {len(shape)} dimensions, at most {MAX_RANK} are allowed", "invalid")
    return tuple(shape)


def _b64_text(text: Any, what: str) -> str:
    if not isinstance(text, str):
        raise _Refused(f"{what} must be a base64 string, received {json_kind(text)}", "invalid")
    return text


def _b64_length(text: str) -> int:
    """The byte count ``text`` decodes to, if it is valid base64, without decoding it."""
    return len(text) // 4 * 3 - text[-2:].count("=")


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _Refused(f"not valid base64: {error}", "undecodable") from None


def _decode_npy(data: bytes, budget: _Budget) -> np.ndarray:
    if not data.startswith(b"\x93NUMPY"):
        raise _Refused("not a .npy file (it does not start with the \\x93NUMPY magic)", "undecodable")
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise _Refused(f"unsupported .npy format version {version[0]}.{version[1]}", "undecodable")
    except _Refused:
        raise
    except (ValueError, SyntaxError, TypeError, OverflowError, EOFError) as error:
        raise _Refused(f"not a valid .npy header: {error}", "undecodable") from None
    if dtype.hasobject:
        raise _Refused(
            "the .npy holds Python objects, which would need unpickling; refused (send numbers, booleans or "
            "unicode strings)",
            "pickle_refused",
        )
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in _NPY_KINDS:
        raise _Refused(f"the .npy dtype {dtype.str!r} is not a tensor element type", "unsupported_dtype")
    if len(shape) > MAX_RANK:
        raise _Refused(f"the .npy has {len(shape)} dimensions, at most {MAX_RANK} are allowed", "invalid")
    nbytes = math.prod(shape) * dtype.itemsize
    budget.take(nbytes, f"the .npy's shape {shape_text(shape)} of {dtype.name}")
    held = len(data) - stream.tell()
    if held < nbytes:
        raise _Refused(
            f"the .npy declares shape {shape_text(shape)} of {dtype.name} ({nbytes} bytes) but holds {held}",
            "shape_mismatch",
        )
    order = "F" if fortran_order else "C"
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=stream.tell())
    array = array.reshape(shape, order=order)
    return np.array(array, dtype=dtype.newbyteorder("="), order="C", copy=True)


def _decode_json_tensor(value: Any, budget: _Budget) -> np.ndarray:
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if len(shape) > MAX_RANK:
            raise _Refused(f"nested lists deeper than {MAX_RANK} dimensions", "invalid")
        if not probe:
            break
        probe = probe[0]
    leaves = _JsonLeaves()
    _walk_json(value, shape, 0, (), leaves)
    count = math.prod(shape)
    if count == 0:
        return np.zeros(shape, dtype=np.float64)  # no element says its type; validation casts empties freely
    if (leaves.strings or leaves.specials) and not (leaves.numbers or leaves.bools):
        # Only strings: a string tensor ("NaN" among them is just text; validation turns a list made only of
        # the non-finite spellings into floats when the model wants floats).
        budget.take(leaves.string_bytes + 8 * count, "the strings")
        array = np.empty(count, dtype=object)
        array[:] = _flatten(value, len(shape))
        return array.reshape(shape)
    if leaves.bools and (leaves.numbers or leaves.strings or leaves.specials):
        raise _Refused(f"{_item(leaves.first_bool)} is a boolean in a list of numbers or strings", "invalid")
    if leaves.strings:
        raise _Refused(
            f"{_item(leaves.first_string)} is the string {leaves.first_string_value!r} in a list of "
            'numbers (only "NaN", "Infinity" and "-Infinity" may stand for numbers)',
            "invalid",
        )
    if leaves.bools:
        budget.take(count, "the booleans")
        return np.array(value, dtype=np.bool_)
    if leaves.floats or leaves.specials:
        budget.take(8 * count, "the numbers")
        if not leaves.specials:
            return np.array(value, dtype=np.float64)
        flat = [NON_FINITE_SPELLINGS[item] if isinstance(item, str) else item for item in _flatten(value, len(shape))]
        return np.array(flat, dtype=np.float64).reshape(shape)
    budget.take(8 * count, "the integers")
    if leaves.int_min >= _INT64.min and leaves.int_max <= _INT64.max:
        return np.array(value, dtype=np.int64)
    if leaves.int_min >= 0 and leaves.int_max <= _UINT64.max:
        return np.array(value, dtype=np.uint64)
    raise _Refused(
        f"integers from {leaves.int_min} to {leaves.int_max} do not fit in 64 bits (int64 or uint64)", "invalid"
    )


class _JsonLeaves:
    """What kinds of scalars a nested list holds, and where the first of each is."""

    def __init__(self) -> None:
        self.numbers = self.floats = self.bools = self.strings = self.specials = 0
        self.string_bytes = 0
        # Only read once an integer was seen, which replaces them.
        self.int_min: float | int = math.inf
        self.int_max: float | int = -math.inf
        self.first_bool: tuple[int, ...] = ()
        self.first_string: tuple[int, ...] = ()
        self.first_string_value = ""


def _walk_json(node: Any, shape: list[int], depth: int, position: tuple[int, ...], leaves: _JsonLeaves) -> None:
    if depth < len(shape):
        if not isinstance(node, list):
            raise _Refused(
                f"ragged nested lists: {_item(position)} is {json_kind(node)}, but {_item((0,) * depth)} is a "
                f"list of {shape[depth]}",
                "ragged",
            )
        if len(node) != shape[depth]:
            raise _Refused(
                f"ragged nested lists: {_item(position)} has {_count(len(node))}, but {_item((0,) * depth)} has "
                f"{_count(shape[depth])}",
                "ragged",
            )
        if depth == len(shape) - 1 and _classify_row(node, position, leaves):
            return
        for index, child in enumerate(node):
            _walk_json(child, shape, depth + 1, (*position, index), leaves)
        return
    _classify_leaf(node, shape, position, leaves)


def _classify_row(row: list, position: tuple[int, ...], leaves: _JsonLeaves) -> bool:
    """The fast path for a last-axis row of plain numbers or booleans (C-speed ``map``/``min``/``max`` instead of a
    Python call per element); ``False`` sends anything else through the per-element walk."""
    if not row:
        return True
    types = set(map(type, row))
    if types == {bool}:
        if not leaves.bools:
            leaves.first_bool = (*position, 0)
        leaves.bools += len(row)
        return True
    if not types <= {int, float}:
        return False
    leaves.numbers += len(row)
    if float in types:
        leaves.floats += 1
    else:
        leaves.int_min = min(leaves.int_min, min(row))
        leaves.int_max = max(leaves.int_max, max(row))
    return True


def _classify_leaf(node: Any, shape: list[int], position: tuple[int, ...], leaves: _JsonLeaves) -> None:
    depth = len(position)
    if isinstance(node, bool):
        if not leaves.bools:
            leaves.first_bool = position
        leaves.bools += 1
    elif isinstance(node, int):
        leaves.numbers += 1
        leaves.int_min = min(leaves.int_min, node)
        leaves.int_max = max(leaves.int_max, node)
    elif isinstance(node, float):
        leaves.numbers += 1
        leaves.floats += 1
    elif isinstance(node, str):
        if node in NON_FINITE_SPELLINGS:
            leaves.specials += 1
        else:
            if not leaves.strings:
                leaves.first_string, leaves.first_string_value = position, node
            leaves.strings += 1
        leaves.string_bytes += len(node)
    elif isinstance(node, list):
        raise _Refused(
            f"ragged nested lists: {_item(position)} is a list, but {_item((0,) * depth)} is not",
            "ragged",
        )
    else:
        raise _Refused(f"{_item(position)} is {json_kind(node)}; tensors hold numbers, booleans or strings", "invalid")


def _flatten(value: Any, rank: int) -> list:
    if rank == 0:
        return [value]
    items = value
    for _ in range(rank - 1):
        items = [child for item in items for child in item]
    return items


# Encoding -------------------------------------------------------------------------------------------------


def split_outputs(outputs: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A run's outputs as (the tensors, to keep as they are; the other values (sequences, maps) encoded as JSON)."""
    tensors = {name: value for name, value in outputs.items() if isinstance(value, np.ndarray)}
    others = {name: value for name, value in outputs.items() if not isinstance(value, np.ndarray)}
    return tensors, (encode_outputs(others, encoding="json") if others else {})


def encode_outputs(outputs: dict[str, Any], *, encoding: str = "json") -> dict[str, Any]:
    """Model outputs as a JSON-ready dict, each tensor in ``encoding``:

    * ``json``: nested lists (scalars for rank 0); NaN and infinities as ``"NaN"``, ``"Infinity"``,
      ``"-Infinity"``; float16 widened to float;
    * ``b64``: ``{"b64", "dtype", "shape"}`` with the little-endian buffer;
    * ``npy``: ``{"npy": "<base64 of a .npy file>"}``.

    Values that are not tensors (ONNX Runtime returns ``seq(map(...))`` as a list of dicts, e.g. the iris
    classifier's probabilities) are always JSON, with map keys as strings; string tensors have no raw
    buffer, so ``b64`` sends them as JSON lists (``npy`` sends them as a unicode ``.npy``).
    """
    if encoding not in ENCODINGS:
        raise TensorCodecError(
            {"encoding": [f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}"]}, "invalid"
        )
    return {name: _encode_value(value, encoding) for name, value in outputs.items()}


def encode_npz(outputs: dict[str, Any]) -> bytes:
    """Tensor outputs as a compressed ``.npz`` (``np.savez_compressed``), read back with
    ``np.load(..., allow_pickle=False)``.

    Values that are not tensors (sequences, maps, ``None``) are *skipped*: an ``.npz`` holds arrays only,
    and storing them as object arrays would force readers to unpickle. Use the JSON encoding for them.
    String tensors are stored as unicode arrays for the same reason.
    """
    arrays: dict[str, np.ndarray] = {}
    for name, value in outputs.items():
        array = _as_tensor(value)
        if array is None:
            continue
        if array.dtype.hasobject:
            if not _holds_only_strings(array):
                continue
            array = array.astype(np.str_)
        arrays[name] = array
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def nbytes_of(outputs: dict[str, Any]) -> int:
    """Total bytes of the output tensors, for an output size cap: ``ndarray.nbytes`` for numeric tensors, the
    UTF-8 length of each string for string tensors, and an estimate for non-tensor values (8 bytes a number,
    the length of each string or key)."""
    return sum(_nbytes(value) for value in outputs.values())


def _nbytes(value: Any) -> int:
    array = _as_tensor(value)
    if array is not None:
        if array.dtype.hasobject:
            return sum(_nbytes(item) for item in array.ravel().tolist())
        if array.dtype.kind == "U":
            return sum(len(item.encode()) for item in array.ravel().tolist())
        return int(array.nbytes)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, dict):
        return sum(_nbytes(key) + _nbytes(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(item) for item in value)
    if value is None:
        return 0
    return 8


def _as_tensor(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    return None


def _encode_value(value: Any, encoding: str) -> Any:
    array = _as_tensor(value)
    if array is None:
        return _to_json(value)
    if array.dtype.hasobject or array.dtype.kind in "US":
        if encoding == "npy" and _holds_only_strings(array):
            return {"npy": _npy_b64(array.astype(np.str_))}
        return _to_json(array)
    if encoding == "json":
        return _array_to_json(array)
    if encoding == "b64":
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        return {
            "b64": base64.b64encode(little.tobytes()).decode("ascii"),
            "dtype": array.dtype.name,
            "shape": list(array.shape),
        }
    return {"npy": _npy_b64(array)}


def _npy_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _array_to_json(array: np.ndarray) -> Any:
    if array.dtype.kind in "fc":
        if array.dtype.kind == "c":
            raise TensorCodecError({"outputs": ["complex tensors cannot be encoded"]}, "unsupported_dtype")
        wide = array.astype(np.float64)
        finite = np.isfinite(wide)
        if finite.all():
            return wide.tolist()
        spelled = wide.astype(object)
        spelled[np.isnan(wide)] = "NaN"
        spelled[wide == np.inf] = "Infinity"
        spelled[wide == -np.inf] = "-Infinity"
        return spelled.tolist()
    return array.tolist()


def _to_json(value: Any) -> Any:
    """Any value ONNX Runtime returns (tensors, lists, dicts with int or str keys, NumPy scalars) as JSON."""
    array = _as_tensor(value)
    if array is not None:
        if array.dtype.hasobject:
            return _to_json(array.tolist())
        if array.dtype.kind == "S":
            return _to_json(array.tolist())
        return _array_to_json(array)
    if isinstance(value, dict):
        return {str(key): _to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _holds_only_strings(array: np.ndarray) -> bool:
    return array.dtype.kind == "U" or all(isinstance(item, str) for item in array.ravel().tolist())


# Message helpers ------------------------------------------------------------------------------------------


def _item(position: tuple[int, ...]) -> str:
    """``item [1][0]`` for a position inside nested lists, ``the value`` for the value itself."""
    return "item " + "".join(f"[{index}]" for index in position) if position else "the value"


def _count(items: int) -> str:
    return f"{items} item" if items == 1 else f"{items} items"


def _key_list(keys: Any) -> str:
    return ", ".join(repr(str(key)) for key in keys) or "(none)"


def json_kind(value: Any) -> str:
    """A JSON value in words: ``null``, ``a boolean``, ``a number``, ``a string``, ``a list``, ``an object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
