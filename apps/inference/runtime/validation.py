"""Input validation against a model's stored signature, and the helpers that merge requests into one batch.

:func:`validate_inputs` runs before ONNX Runtime sees anything: a request that does not fit the model gets
every problem at once, each under its field (``inputs.input_ids: expected int64, received float64 with
non-integral values``), instead of an ONNX Runtime error or a 500. What fits is returned as contiguous
arrays of the exact NumPy type the model declares.

:func:`batch_axis`, :func:`merge_batch` and :func:`split_batch` let a worker run several requests for the
same dynamically batched model as one ``session.run``.

The signature is the one ``apps/marketplace/onnx/signature.py`` stores: ``{"inputs": [{"name", "elem_type",
"shape"}], "outputs": [...]}``, a dimension being an int (fixed), a str (symbolic) or ``None`` (unknown),
a whole shape ``None`` when the rank is unknown.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from apps.core.errors import Problems
from apps.inference.runtime.codecs import NON_FINITE_SPELLINGS
from apps.inference.runtime.signature import shape_text, tensor_type

# Element types of the signature -> the NumPy type ONNX Runtime takes for them. String tensors go in as
# object arrays of ``str``: ONNX Runtime accepts them, and unlike ``<U`` arrays their memory does not grow
# with the longest string times the element count.
NUMPY_TYPES: dict[str, Any] = {
    "bool": np.bool_,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "string": np.object_,
}


class InputValidationError(ValueError):
    """Inputs that do not fit the model's signature.

    ``errors`` maps a field path (``inputs.input_ids``) to its messages, as DRF does; ``code`` is a stable
    short string for the first problem (``unknown_input``, ``missing_input``, ``unsupported_input``,
    ``wrong_dtype``, ``wrong_shape``, ``dimension_mismatch``, ``empty``, ``non_finite``), and ``codes`` has
    one per message.
    """

    def __init__(self, errors: dict[str, list[str]], code: str, codes: dict[str, list[str]] | None = None):
        self.errors = errors
        self.code = code
        self.codes = codes or {key: [code] * len(messages) for key, messages in errors.items()}
        super().__init__("; ".join(f"{key}: {message}" for key, messages in errors.items() for message in messages))


def validate_inputs(
    signature: dict,
    arrays: dict[str, np.ndarray],
    *,
    allow_nan: bool = False,
    allow_empty: bool = False,
    field: str = "inputs",
) -> dict[str, np.ndarray]:
    """Check ``arrays`` against the model's inputs and return them cast to what the model wants.

    Every problem is collected before raising :class:`InputValidationError`: unknown and missing inputs,
    element types (safe casts are made: integers or float64 into float inputs, integral floats into int
    inputs, 0/1 integers into bool inputs; values that would not survive the cast are refused), rank and
    fixed dimensions, symbolic dimensions that must agree across inputs (``batch``), NaN and infinities
    (refused unless ``allow_nan``), and empty dimensions: fine where the signature declares 0, elsewhere
    refused unless ``allow_empty`` (a model with an empty past-key-values input, say).

    Returns name -> C-contiguous array in the model's input order.
    """
    declared = list(signature.get("inputs") or [])
    names = [entry["name"] for entry in declared]
    listing = ", ".join(names) or "(none)"
    problems = Problems()
    for name in arrays:
        if name not in names:
            problems.add(f"{field}.{name}", f"unknown input; the model's inputs are {listing}", "unknown_input")
    symbols: dict[str, tuple[str, int]] = {}  # symbolic dimension -> (field of the first input, its size)
    result: dict[str, np.ndarray] = {}
    for entry in declared:
        name = entry["name"]
        key = f"{field}.{name}"
        if name not in arrays:
            problems.add(key, f"required input is missing; the model's inputs are {listing}", "missing_input")
            continue
        array = np.asarray(arrays[name])
        shape_ok = _check_shape(key, array.shape, entry.get("shape"), symbols, allow_empty, problems)
        cast = _cast(key, array, entry.get("elem_type"), problems)
        if cast is None:
            continue
        if not allow_nan and cast.dtype.kind == "f" and cast.size and not np.isfinite(cast).all():
            bad = ~np.isfinite(cast)
            first = [int(index) for index in np.argwhere(bad)[0]]
            count = int(bad.sum())
            where = (
                f"a NaN or infinite value at {first}"
                if count == 1
                else f"{count} NaN or infinite values, the first at {first}"
            )
            problems.add(key, f"{where}; they are refused unless allow_nan is set", "non_finite")
            continue
        if shape_ok:
            result[name] = np.ascontiguousarray(cast)
    problems.raise_if_any(InputValidationError)
    return result


def _source_name(array: np.ndarray) -> str:
    return "string" if array.dtype.kind in "UOS" else array.dtype.name


def _cast(key: str, array: np.ndarray, elem_type: Any, problems: Problems) -> np.ndarray | None:
    """``array`` in the model's element type, or ``None`` after recording why it cannot be."""
    target_name = tensor_type(elem_type)
    if target_name is None:
        problems.add(
            key, f"the model's input is a {elem_type}, not a tensor; it cannot be fed here", "unsupported_input"
        )
        return None
    if target_name not in NUMPY_TYPES:
        problems.add(
            key,
            f"the model wants {target_name}, which NumPy cannot hold; this input cannot be fed",
            "unsupported_input",
        )
        return None
    target = np.dtype(NUMPY_TYPES[target_name])
    kind = array.dtype.kind
    if array.size == 0:
        # An empty JSON list says nothing about its type: any element type fits.
        return np.empty(array.shape, dtype=target)
    if target_name == "string":
        return _to_strings(key, array, problems)
    if kind in "UOS":
        values = array.ravel().tolist()
        if not all(isinstance(value, str) and value in NON_FINITE_SPELLINGS for value in values):
            problems.add(key, f"expected {target_name}, received string", "wrong_dtype")
            return None
        # A list made only of "NaN" / "Infinity" decodes as strings; the model says they are numbers.
        array = np.array([NON_FINITE_SPELLINGS[value] for value in values], dtype=np.float64).reshape(array.shape)
        kind = "f"
    if kind not in "biuf":
        problems.add(key, f"expected {target_name}, received {array.dtype.name}", "wrong_dtype")
        return None
    received = array.dtype.name
    if target.kind == "b":
        if kind == "b":
            return array
        if kind in "iu" and np.isin(array, (0, 1)).all():
            return array.astype(np.bool_)
        detail = " with values other than 0 and 1" if kind in "iu" else ""
        problems.add(key, f"expected bool, received {received}{detail}", "wrong_dtype")
        return None
    if target.kind == "f":
        with np.errstate(over="ignore"):  # overflow is detected below, with a message
            cast = array.astype(target)
        if kind != "b" and target.itemsize < 8:
            overflow = np.isinf(cast) & ~np.isinf(array) if kind == "f" else np.isinf(cast)
            if overflow.any():
                largest = float(np.finfo(target).max)
                problems.add(
                    key,
                    f"expected {target_name}, received {received} with values beyond the {target_name} range "
                    f"(±{largest:g})",
                    "wrong_dtype",
                )
                return None
        return cast
    # Integer targets.
    info = np.iinfo(target)
    if kind == "f":
        if not np.isfinite(array).all():
            problems.add(key, f"expected {target_name}, received {received} with NaN or infinite values", "wrong_dtype")
            return None
        if not (np.trunc(array) == array).all():
            problems.add(key, f"expected {target_name}, received {received} with non-integral values", "wrong_dtype")
            return None
        # The bounds of every integer type are powers of two, which floats hold exactly.
        too_low = float(array.min()) < float(info.min)
        too_high = float(array.max()) >= float(info.max) + 1
    elif kind in "iu":
        too_low = int(array.min()) < int(info.min)
        too_high = int(array.max()) > int(info.max)
    else:  # bool: 0 and 1 fit every integer type
        too_low = too_high = False
    if too_low or too_high:
        problems.add(
            key,
            f"expected {target_name}, received {received} with values outside the {target_name} range "
            f"[{info.min}, {info.max}]",
            "wrong_dtype",
        )
        return None
    return array.astype(target)


def _to_strings(key: str, array: np.ndarray, problems: Problems) -> np.ndarray | None:
    kind = array.dtype.kind
    if kind == "U" or (kind == "O" and all(isinstance(value, str) for value in array.ravel().tolist())):
        return array.astype(np.object_)
    if kind == "S":
        try:
            values = [value.decode("utf-8") for value in array.ravel().tolist()]
        except UnicodeDecodeError:
            problems.add(key, "expected string, received bytes that are not UTF-8", "wrong_dtype")
            return None
        strings = np.empty(len(values), dtype=np.object_)
        strings[:] = values
        return strings.reshape(array.shape)
    problems.add(key, f"expected string, received {_source_name(array)}", "wrong_dtype")
    return None


def _check_shape(
    key: str,
    shape: tuple[int, ...],
    declared: list | None,
    symbols: dict[str, tuple[str, int]],
    allow_empty: bool,
    problems: Problems,
) -> bool:
    """Whether ``shape`` fits ``declared``; records each mismatch, and binds symbolic dimensions."""
    if declared is None:
        if 0 in shape and not allow_empty:
            axis = shape.index(0)
            problems.add(key, f"dimension {axis} is empty (0); empty tensors are refused for this model", "empty")
            return False
        return True
    wanted = shape_text(declared)
    if len(shape) != len(declared):
        problems.add(
            key, f"expected shape {wanted} (rank {len(declared)}), received {shape_text(shape)}", "wrong_shape"
        )
        return False
    ok = True
    for axis, (size, dim) in enumerate(zip(shape, declared, strict=True)):
        if isinstance(dim, int):
            if size != dim:
                problems.add(
                    key,
                    f"dimension {axis} is {size}, the model wants {dim} (expected shape {wanted}, received "
                    f"{shape_text(shape)})",
                    "wrong_shape",
                )
                ok = False
            continue
        if size == 0 and not allow_empty:
            name = f' ("{dim}")' if isinstance(dim, str) else ""
            problems.add(key, f"dimension {axis}{name} is empty (0); empty tensors are refused for this model", "empty")
            ok = False
            continue
        if isinstance(dim, str):
            if dim in symbols:
                first_key, first_size = symbols[dim]
                if first_size != size:
                    problems.add(
                        key,
                        f'dimension {axis} ("{dim}") is {size}, but {first_key} has {first_size}',
                        "dimension_mismatch",
                    )
                    ok = False
            else:
                symbols[dim] = (key, size)
    return ok


# Batching ------------------------------------------------------------------------------------------------


def batch_axis(signature: dict) -> bool:
    """Whether the model can be batched dynamically: every input and every output is a tensor whose first
    dimension is symbolic or unknown (and there is at least one input)."""
    inputs = list(signature.get("inputs") or [])
    outputs = list(signature.get("outputs") or [])
    if not inputs or not outputs:
        return False
    for entry in (*inputs, *outputs):
        shape = entry.get("shape")
        if tensor_type(entry.get("elem_type")) is None or not shape or isinstance(shape[0], int):
            return False
    return True


def batch_size_of(arrays: dict[str, np.ndarray]) -> int:
    """The size of axis 0, shared by every array; ``ValueError`` when they disagree or one is a scalar."""
    sizes = {}
    for name, array in arrays.items():
        if np.ndim(array) == 0:
            raise ValueError(f"{name} is a scalar: it has no batch axis")
        sizes[name] = int(np.shape(array)[0])
    if not sizes:
        raise ValueError("no arrays: nothing to take a batch size from")
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the arrays disagree on axis 0: {sizes}")
    return next(iter(sizes.values()))


class BatchSizes(list):
    """What :func:`merge_batch` returns beside the merged arrays: a list of each item's batch size, which is
    all :func:`split_batch` needs. When the merge padded axis 1 (token sequences of different lengths) it
    also carries ``lengths`` (each item's axis-1 length before padding) and ``padded_length`` (the longest),
    so that split can trim the padding off outputs; both are ``None`` otherwise."""

    def __init__(self, sizes: list[int], lengths: list[int] | None = None, padded_length: int | None = None):
        super().__init__(sizes)
        self.lengths = lengths
        self.padded_length = padded_length


def mergeable(a: dict[str, np.ndarray], b: dict[str, np.ndarray], *, pad: bool = False) -> bool:
    """Whether :func:`merge_batch` takes the (validated) items ``a`` and ``b`` together: the same input names,
    dtypes and ranks, and, unless ``pad``, the same dimensions beyond axis 0."""
    if a.keys() != b.keys():
        return False
    for name in a:
        if a[name].dtype != b[name].dtype or a[name].ndim != b[name].ndim:
            return False
        if not pad and a[name].shape[1:] != b[name].shape[1:]:
            return False
    return True


def merge_batch(items: list[dict[str, np.ndarray]], *, pad: bool = False) -> tuple[dict[str, np.ndarray], BatchSizes]:
    """Concatenate several requests' (validated) inputs along axis 0, for one ``session.run``.

    Items must have the same input names, dtypes and ranks. When an input's other dimensions differ between
    items (token sequences of different lengths) and ``pad`` is true, each is right-padded with 0 (``""`` for
    strings) to the longest. Padding is only correct for models that ignore the padded positions, i.e.
    sequence models fed an attention mask (padded with 0 too, so the padding is masked out); with ``pad``
    false such items raise ``ValueError`` and the caller runs them separately.

    Returns the merged arrays and a :class:`BatchSizes` (each item's batch size, plus the axis-1 lengths
    when axis 1 was padded and every rank ≥ 2 input of an item agrees on it).
    """
    if not items:
        raise ValueError("no items to merge")
    names = list(items[0])
    for index, item in enumerate(items[1:], start=1):
        if set(item) != set(names):
            raise ValueError(f"item {index} has inputs {sorted(item)}, item 0 has {sorted(names)}")
    sizes = [batch_size_of(item) for item in items]
    merged: dict[str, np.ndarray] = {}
    padded_axis_1 = False
    for name in names:
        arrays = [np.asarray(item[name]) for item in items]
        dtypes = {array.dtype for array in arrays}
        if len(dtypes) > 1:
            raise ValueError(f"{name}: the items have different dtypes {sorted(map(str, dtypes))}; validate them first")
        ranks = {array.ndim for array in arrays}
        if len(ranks) > 1:
            raise ValueError(f"{name}: the items have different ranks {sorted(ranks)}")
        longest = tuple(max(array.shape[axis] for array in arrays) for axis in range(1, arrays[0].ndim))
        if any(array.shape[1:] != longest for array in arrays):
            if not pad:
                shapes = sorted({array.shape[1:] for array in arrays})
                raise ValueError(f"{name}: the items differ beyond axis 0 {shapes}; run them separately or pad")
            fill = "" if arrays[0].dtype.kind in "OU" else 0
            padded_axis_1 = padded_axis_1 or any(array.shape[1] != longest[0] for array in arrays)
            arrays = [
                np.pad(
                    array,
                    [(0, 0)] + [(0, want - have) for have, want in zip(array.shape[1:], longest, strict=True)],
                    constant_values=fill,
                )
                for array in arrays
            ]
        merged[name] = np.ascontiguousarray(np.concatenate(arrays, axis=0))
    lengths = _sequence_lengths(items) if padded_axis_1 else None
    return merged, BatchSizes(sizes, lengths, max(lengths) if lengths else None)


def _sequence_lengths(items: list[dict[str, np.ndarray]]) -> list[int] | None:
    """Each item's axis-1 length, when all its rank ≥ 2 inputs agree on one; ``None`` otherwise."""
    lengths = []
    for item in items:
        found = {np.shape(array)[1] for array in item.values() if np.ndim(array) >= 2}
        if len(found) != 1:
            return None
        lengths.append(int(found.pop()))
    return lengths


def split_batch(outputs: dict[str, Any], sizes: list[int], *, lengths: list[int] | None = None) -> list[dict[str, Any]]:
    """Slice a merged run's outputs back into one dict per item, by the ``sizes`` :func:`merge_batch` gave.

    Tensors are sliced along axis 0, and list outputs (sequences such as a classifier's per-row maps) by
    position. When the merge padded axis 1, outputs of rank ≥ 2 whose axis 1 equals the padded length are
    trimmed back to each item's own length (``lengths``, taken from ``sizes.lengths`` when not given), so
    ``last_hidden_state`` comes back ``[1, own_length, 384]``. Padding on other axes is not undone. An
    output without the batch on axis 0 raises ``ValueError``: run such models one request at a time.
    """
    total = sum(sizes)
    lengths = lengths if lengths is not None else getattr(sizes, "lengths", None)
    if lengths is not None and len(lengths) != len(sizes):
        raise ValueError(f"{len(lengths)} lengths for {len(sizes)} items")
    padded_length = max(lengths) if lengths else None
    for name, value in outputs.items():
        rows = len(value) if isinstance(value, (list, tuple)) else (np.shape(value)[0] if np.ndim(value) else None)
        if rows != total:
            raise ValueError(f"output {name} has {rows} rows on axis 0, the merged batch has {total}")
    pieces: list[dict[str, Any]] = []
    start = 0
    for index, size in enumerate(sizes):
        piece: dict[str, Any] = {}
        for name, value in outputs.items():
            if isinstance(value, (list, tuple)):
                piece[name] = list(value[start : start + size])
                continue
            part = value[start : start + size]
            if padded_length is not None and part.ndim >= 2 and part.shape[1] == padded_length:
                part = part[:, : lengths[index]]
            piece[name] = np.ascontiguousarray(part)
        pieces.append(piece)
        start += size
    return pieces
