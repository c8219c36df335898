"""A model's signature as JSON: inputs and outputs (name, element type, shape), opsets and producer.

Shapes keep what the graph declares: an integer for a fixed dimension, a string for a symbolic one
(``"batch"``), ``null`` for an unknown one; the whole shape is ``null`` when even the rank is unknown or the
value is not a tensor. Element types use NumPy-style names (``float32``, ``int64``, ``string``); values
that are not tensors are spelled ``seq(map(int64,tensor(float32)))``, ``optional(tensor(int64))``.
"""

from __future__ import annotations

from typing import Any

from onnx import ModelProto, TensorProto, TypeProto, ValueInfoProto

# TensorProto.DataType names whose NumPy-style name differs from the lower-cased ONNX name.
_ELEM_RENAMES = {"FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "UNDEFINED": "undefined"}

DEFAULT_DOMAIN = "ai.onnx"


def elem_type_name(elem_type: int) -> str:
    """``1`` -> ``float32``, ``7`` -> ``int64``, ``8`` -> ``string``; unknown numbers -> ``unknown(N)``."""
    try:
        name = TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"unknown({elem_type})"
    return _ELEM_RENAMES.get(name, name.lower())


def type_name(type_proto: TypeProto, *, nested: bool = False) -> str:
    """The element type of a tensor (``float32``), or the spelled-out type of any other value."""
    kind = type_proto.WhichOneof("value")
    if kind == "tensor_type":
        name = elem_type_name(type_proto.tensor_type.elem_type)
        return f"tensor({name})" if nested else name
    if kind == "sparse_tensor_type":
        return f"sparse_tensor({elem_type_name(type_proto.sparse_tensor_type.elem_type)})"
    if kind == "sequence_type":
        return f"seq({type_name(type_proto.sequence_type.elem_type, nested=True)})"
    if kind == "map_type":
        key = elem_type_name(type_proto.map_type.key_type)
        return f"map({key},{type_name(type_proto.map_type.value_type, nested=True)})"
    if kind == "optional_type":
        return f"optional({type_name(type_proto.optional_type.elem_type, nested=True)})"
    return "unknown"


def shape_of(type_proto: TypeProto) -> list[int | str | None] | None:
    """The declared shape of a (sparse) tensor value; ``None`` for other values or an unknown rank."""
    kind = type_proto.WhichOneof("value")
    if kind not in ("tensor_type", "sparse_tensor_type"):
        return None
    tensor_type = getattr(type_proto, kind)
    if not tensor_type.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for dim in tensor_type.shape.dim:
        which = dim.WhichOneof("value")
        if which == "dim_value":
            dims.append(int(dim.dim_value))
        elif which == "dim_param" and dim.dim_param:
            dims.append(str(dim.dim_param))
        else:
            dims.append(None)
    return dims


def value_entry(value: ValueInfoProto) -> dict[str, Any]:
    """One input or output: ``{"name", "elem_type", "shape"}`` plus ``doc_string`` when there is one."""
    entry: dict[str, Any] = {
        "name": value.name,
        "elem_type": type_name(value.type),
        "shape": shape_of(value.type),
    }
    if value.doc_string:
        entry["doc_string"] = value.doc_string
    return entry


def opsets_of(model: ModelProto) -> dict[str, int]:
    """``{"ai.onnx": 13, "ai.onnx.ml": 1, ...}`` (the default domain spelled ``ai.onnx``)."""
    return {(opset.domain or DEFAULT_DOMAIN): int(opset.version) for opset in model.opset_import}


def extract_signature(model: ModelProto) -> dict[str, Any]:
    """The signature of ``model``: inputs a caller must feed (initializer-backed inputs left out), outputs,
    opsets and producer."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    initializers.update(sparse.values.name for sparse in model.graph.sparse_initializer)
    return {
        "inputs": [value_entry(value) for value in model.graph.input if value.name not in initializers],
        "outputs": [value_entry(value) for value in model.graph.output],
        "opsets": opsets_of(model),
        "producer": {"name": model.producer_name, "version": model.producer_version},
    }
