"""Reading a model's signature (as ``apps.marketplace.onnx.signature`` stores it) for the runtime and its callers.

A signature entry's ``shape`` is a list of dimensions (an integer when fixed, a string when symbolic such as
``"batch"``, ``None`` when unknown) or ``None`` when the rank is unknown; its ``elem_type`` is a NumPy-style name
(``float32``) for a tensor, a spelled-out type for other values (``seq(map(int64,tensor(float32)))``).
"""

from __future__ import annotations

from typing import Any

_OPTIONAL_TENSOR = "optional(tensor("


def shape_text(shape: Any) -> str:
    """``[None, 4]`` -> ``[?, 4]``, ``["batch", 384]`` -> ``[batch, 384]``, a concrete shape (a tuple too) as it is;
    an unknown rank (``None``, anything not a list or tuple) -> ``any shape``."""
    if not isinstance(shape, list | tuple):
        return "any shape"
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def tensor_type(elem_type: Any) -> str | None:
    """The element type of a tensor value (``optional(tensor(T))`` unwrapped); ``None`` for sequences, maps and
    anything else that is not a tensor."""
    if not isinstance(elem_type, str):
        return None
    if elem_type.startswith(_OPTIONAL_TENSOR) and elem_type.endswith("))"):
        elem_type = elem_type[len(_OPTIONAL_TENSOR) : -2]
    return None if "(" in elem_type else elem_type
