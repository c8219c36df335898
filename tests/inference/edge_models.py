"""Models built with ``onnx.helper`` for the reliability tests: each one fails (or takes long) in one known way.

* ``slow_model``: ``steps`` int64 [1] -> a Loop of ``steps`` 256x256 MatMul + Tanh -> ``checksum`` float32 [1];
  about 0.6 ms a step on one CPU thread, so its running time is chosen by the request (``steps_for_seconds``);
* ``unloadable_model``: a graph whose only node is an op of a domain ONNX Runtime does not know, so our
  signature extraction reads it but no session can be made of it;
* ``allocating_model``: ``shape`` int64 [3] -> ConstantOfShape -> ReduceSum -> ``total`` float32 [1]: it allocates
  ``4 * prod(shape)`` bytes, chosen by the request (``[5000, 1000, 1000]`` is 20 GB);
* ``expanding_model``: ``shape`` int64 [3] -> Expand of a float32 1 to that shape -> its maximum ``peak`` float32
  [1]: ``4 * prod(shape)`` bytes for one tensor, chosen by the request;
* ``endless_model``: ``x`` float32 [N, 4] -> a Loop with no trip count whose condition stays true -> ``y``: a run
  that never ends unless ONNX Runtime's terminate flag stops it;
* ``text_model``: ``text`` string [N] -> lower-cased ``lowered`` string [N] and ``ids`` int64 [N] (a LabelEncoder):
  string tensors in and out.

Each ``*_bytes()`` function returns the serialized model, ready for ``Runnable.version(name, {"model.onnx": ...})``;
``iris_bytes()`` is the skl2onnx iris classifier of ``tests.inference.onnx_models``, trained once per process (it
takes most of a second) and ``iris_version`` makes a runnable version of it.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.inference import onnx_models
from tests.marketplace.onnx_fixtures import make_model

SLOW_SIDE = 256
# Measured on the 2-core CI machine, one ORT thread: ~0.6 ms per step (more under load). Tests only need "clearly longer
# than the limit" and "clearly shorter", never an exact time.
SECONDS_PER_STEP = 0.0006

UNKNOWN_DOMAIN = "com.example.unknown"
UNKNOWN_OP = "Frobnicate"


def slow_model() -> onnx.ModelProto:
    """``steps`` int64 [1] -> ``checksum`` float32 [1], after ``steps`` MatMul+Tanh rounds on a 256x256 state."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(
        (rng.standard_normal((SLOW_SIDE, SLOW_SIDE)) / SLOW_SIDE**0.5).astype(np.float32), "weight"
    )
    state = numpy_helper.from_array(np.full((SLOW_SIDE, SLOW_SIDE), 0.5, dtype=np.float32), "state0")
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["state_in", "weight"], ["product"]),
            helper.make_node("Tanh", ["product"], ["state_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "step",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, [SLOW_SIDE, SLOW_SIDE]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [SLOW_SIDE, SLOW_SIDE]),
        ],
    )
    nodes = [
        helper.make_node("Squeeze", ["steps", "axis0"], ["trip_count"]),
        helper.make_node("Loop", ["trip_count", "keep_going", "state0"], ["final"], body=body),
        helper.make_node("ReduceSum", ["final"], ["total"], keepdims=0),
        helper.make_node("Reshape", ["total", "one"], ["checksum"]),
    ]
    initializers = [
        weight,
        state,
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.array(True), "keep_going"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
    ]
    return make_model(
        nodes,
        [helper.make_tensor_value_info("steps", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("checksum", TensorProto.FLOAT, [1])],
        initializers=initializers,
    )


def steps_for_seconds(seconds: float) -> int:
    """The ``steps`` that make ``slow_model`` run about ``seconds`` on one thread."""
    return max(1, int(seconds / SECONDS_PER_STEP))


def unloadable_model() -> onnx.ModelProto:
    """``x`` float32 [N, 4] -> ``com.example.unknown.Frobnicate`` -> ``y``: a valid graph no runtime can load."""
    node = helper.make_node(UNKNOWN_OP, ["x"], ["y"], domain=UNKNOWN_DOMAIN)
    return make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        opsets={"": 13, UNKNOWN_DOMAIN: 1},
    )


def allocating_model() -> onnx.ModelProto:
    """``shape`` int64 [3] -> a float32 tensor of that shape (ConstantOfShape) -> its sum ``total`` float32 [1]."""
    nodes = [
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["filled"],
            value=numpy_helper.from_array(np.array([1.0], dtype=np.float32), "value"),
        ),
        helper.make_node("ReduceSum", ["filled"], ["sum"], keepdims=0),
        helper.make_node("Reshape", ["sum", "one"], ["total"]),
    ]
    return make_model(
        nodes,
        [helper.make_tensor_value_info("shape", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [1])],
        initializers=[numpy_helper.from_array(np.array([1], dtype=np.int64), "one")],
    )


def slow_model_bytes() -> bytes:
    """``slow_model()`` serialized."""
    return slow_model().SerializeToString()


def unloadable_model_bytes() -> bytes:
    """``unloadable_model()`` serialized."""
    return unloadable_model().SerializeToString()


def allocating_model_bytes() -> bytes:
    """``allocating_model()`` serialized."""
    return allocating_model().SerializeToString()


def manifest(name: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """A normalized gpux.yml manifest for one of these models (no pre- or post-processing)."""
    return {
        "name": name,
        "version": "1.0.0",
        "model": {"source": "./model.onnx", "format": "onnx"},
        "inputs": inputs,
        "outputs": outputs,
    }


@cache
def iris_bytes() -> bytes:
    """The iris classifier (``onnx_models.sklearn_iris_path``) serialized, made once per process."""
    with tempfile.TemporaryDirectory() as directory:
        return onnx_models.sklearn_iris_path(Path(directory)).read_bytes()


def iris_version(runnable: Any, **kwargs: Any) -> Any:
    """A runnable version of the iris classifier (``Runnable.version`` arguments pass through)."""
    return runnable.version(
        kwargs.pop("name", "iris"), {"model.onnx": iris_bytes()}, onnx_models.IRIS_MANIFEST, **kwargs
    )


SLOW_MANIFEST = manifest(
    "slow",
    [{"name": "steps", "type": "int64", "shape": [1], "required": True}],
    [{"name": "checksum", "type": "float32", "shape": [1]}],
)
UNLOADABLE_MANIFEST = manifest(
    "frobnicator",
    [{"name": "x", "type": "float32", "shape": ["N", 4], "required": True}],
    [{"name": "y", "type": "float32", "shape": ["N", 4]}],
)
ALLOCATING_MANIFEST = manifest(
    "allocator",
    [{"name": "shape", "type": "int64", "shape": [3], "required": True}],
    [{"name": "total", "type": "float32", "shape": [1]}],
)


def expanding_model() -> onnx.ModelProto:
    """``shape`` int64 [3] -> Expand(1.0, shape) -> ReduceMax -> ``peak`` float32 [1] (1.0 whatever the shape)."""
    nodes = [
        helper.make_node("Expand", ["one", "shape"], ["big"]),
        helper.make_node("ReduceMax", ["big"], ["largest"], keepdims=0),
        helper.make_node("Reshape", ["largest", "flat"], ["peak"]),
    ]
    return make_model(
        nodes,
        [helper.make_tensor_value_info("shape", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("peak", TensorProto.FLOAT, [1])],
        initializers=[
            numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "flat"),
        ],
    )


def expanding_model_bytes() -> bytes:
    """``expanding_model()`` serialized."""
    return expanding_model().SerializeToString()


def endless_model() -> onnx.ModelProto:
    """``x`` float32 [N, 4] -> ``y`` float32 [N, 4]: a Loop without a trip count that adds 1 forever."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["state_in", "one"], ["state_out"]),
        ],
        "forever",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, ["N", 4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, ["N", 4]),
        ],
        initializer=[numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")],
    )
    return make_model(
        [helper.make_node("Loop", ["", "keep_going", "x"], ["y"], body=body)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        initializers=[numpy_helper.from_array(np.array(True), "keep_going")],
    )


def endless_model_bytes() -> bytes:
    """``endless_model()`` serialized."""
    return endless_model().SerializeToString()


def text_model() -> onnx.ModelProto:
    """``text`` string [N] -> StringNormalizer (lower case) -> ``lowered`` string [N], and a LabelEncoder of the
    lowered words (cat 0, dog 1, anything else -1) -> ``ids`` int64 [N]: string tensors in and out."""
    nodes = [
        helper.make_node("StringNormalizer", ["text"], ["lowered"], case_change_action="LOWER", locale="C.UTF-8"),
        helper.make_node(
            "LabelEncoder",
            ["lowered"],
            ["ids"],
            domain="ai.onnx.ml",
            keys_strings=["cat", "dog"],
            values_int64s=[0, 1],
            default_int64=-1,
        ),
    ]
    return make_model(
        nodes,
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [
            helper.make_tensor_value_info("lowered", TensorProto.STRING, ["N"]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["N"]),
        ],
        opsets={"": 13, "ai.onnx.ml": 2},
    )


def text_model_bytes() -> bytes:
    """``text_model()`` serialized."""
    return text_model().SerializeToString()


TEXT_MANIFEST = manifest(
    "words",
    [{"name": "text", "type": "string", "shape": ["N"], "required": True}],
    [{"name": "lowered", "type": "string", "shape": ["N"]}, {"name": "ids", "type": "int64", "shape": ["N"]}],
)
EXPANDING_MANIFEST = manifest(
    "expander",
    [{"name": "shape", "type": "int64", "shape": [3], "required": True}],
    [{"name": "peak", "type": "float32", "shape": [1]}],
)
