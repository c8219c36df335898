"""Small real models for the pipeline tests, built with ``onnx.helper``, and a quick way to make a runnable
version of one (published, validation taken as passed, the signature the portal's own extraction reads).

* ``linear``: features float32 [N, 4] -> MatMul by a fixed 4x3 matrix -> y float32 [N, 3] (reads what the iris
  classifier reads, answers what it answers: a second branch of a DAG);
* ``argmax``: probabilities float32 [N, 3] -> ArgMax over axis 1 -> index int64 [N];
* ``add``: a, b float32 [N, 3] -> Add -> sum float32 [N, 3];
* ``ids``: ids int64 [N, 3] -> Identity -> out int64 [N, 3] (an input of another element type);
* ``wide``: x float32 [N, 5] -> Identity -> y (a fixed dimension that does not fit [N, 3]);
* ``pair``: x float32 [N, 3], y float32 [N, 3] -> Add -> sum (two required inputs);
* ``reshape``: x float32 [N, 3] -> Reshape to [2, 3] -> y (validates, and fails at run time unless N is 2).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from onnx import TensorProto, helper, numpy_helper

from apps.core.access import Visibility
from apps.marketplace import services as catalog
from apps.marketplace.models import ModelVersion, ValidationStatus
from tests.inference.onnx_models import signature_of_bytes
from tests.marketplace.onnx_fixtures import make_model

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64
LINEAR_WEIGHTS = np.array([[0.1, 0.2, 0.3], [0.0, -0.1, 0.4], [0.5, 0.5, 0.0], [-0.2, 0.3, 0.1]], dtype=np.float32)


def _tensor(name: str, elem_type: int, shape: list) -> object:
    return helper.make_tensor_value_info(name, elem_type, shape)


@cache
def model_bytes(kind: str) -> bytes:
    """The serialized model ``kind`` (see the module docstring)."""
    if kind == "linear":
        weights = numpy_helper.from_array(LINEAR_WEIGHTS, "weights")
        model = make_model(
            [helper.make_node("MatMul", ["features", "weights"], ["y"])],
            [_tensor("features", FLOAT, ["N", 4])],
            [_tensor("y", FLOAT, ["N", 3])],
            initializers=[weights],
        )
    elif kind == "argmax":
        model = make_model(
            [helper.make_node("ArgMax", ["probabilities"], ["index"], axis=1, keepdims=0)],
            [_tensor("probabilities", FLOAT, ["N", 3])],
            [_tensor("index", INT64, ["N"])],
        )
    elif kind == "add":
        model = make_model(
            [helper.make_node("Add", ["a", "b"], ["sum"])],
            [_tensor("a", FLOAT, ["N", 3]), _tensor("b", FLOAT, ["N", 3])],
            [_tensor("sum", FLOAT, ["N", 3])],
        )
    elif kind == "ids":
        model = make_model(
            [helper.make_node("Identity", ["ids"], ["out"])],
            [_tensor("ids", INT64, ["N", 3])],
            [_tensor("out", INT64, ["N", 3])],
        )
    elif kind == "wide":
        model = make_model(
            [helper.make_node("Identity", ["x"], ["y"])],
            [_tensor("x", FLOAT, ["N", 5])],
            [_tensor("y", FLOAT, ["N", 5])],
        )
    elif kind == "pair":
        model = make_model(
            [helper.make_node("Add", ["x", "y"], ["sum"])],
            [_tensor("x", FLOAT, ["N", 3]), _tensor("y", FLOAT, ["N", 3])],
            [_tensor("sum", FLOAT, ["N", 3])],
        )
    elif kind == "reshape":
        shape = numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "target")
        model = make_model(
            [helper.make_node("Reshape", ["x", "target"], ["y"])],
            [_tensor("x", FLOAT, ["N", 3])],
            [_tensor("y", FLOAT, [2, 3])],
            initializers=[shape],
        )
    else:
        raise ValueError(kind)
    return model.SerializeToString()


def make_version(
    world,
    name: str,
    data: bytes,
    *,
    organization=None,
    visibility: str = Visibility.PRIVATE,
    label: str = "1.0.0",
    actor=None,
    validated: bool = True,
    publish: bool = True,
) -> ModelVersion:
    """A version of a new model ``name`` holding ``data`` as ``model.onnx``: validated (with its real signature)
    and published unless told otherwise. The upload's pre-check child process is skipped (its own tests run it)."""
    actor = actor or world.user("member")
    model = catalog.create_model(organization=organization or world.org, actor=actor, name=name, visibility=visibility)
    version = catalog.create_version(model=model, actor=actor, label=label)
    catalog.add_file(
        version=version,
        actor=actor,
        path="model.onnx",
        uploaded=SimpleUploadedFile("model.onnx", data),
        precheck=False,
    )
    if validated:
        ModelVersion.objects.filter(pk=version.pk).update(
            validation_status=ValidationStatus.PASSED, signature=signature_of_bytes(data)
        )
    version.refresh_from_db()
    if validated and publish:
        version = catalog.publish_version(version=version, actor=actor)
    return version


@cache
def iris_bytes() -> bytes:
    """The skl2onnx iris classifier (input ``float_input`` float32 [?, 4]; outputs ``label`` int64 [?] and
    ``probabilities`` float32 [?, 3]), as bytes: trained and converted once per test process."""
    import tempfile
    from pathlib import Path

    from tests.inference.onnx_models import sklearn_iris_path

    with tempfile.TemporaryDirectory() as directory:
        return sklearn_iris_path(Path(directory)).read_bytes()


def ref(version: ModelVersion) -> str:
    """``owner/name@label``, as the API writes a version."""
    return f"{version.model.organization.slug}/{version.model.name}@{version.label}"
