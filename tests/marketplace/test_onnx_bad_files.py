"""Files that are not ONNX models are refused with a sentence saying so, before any native code runs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from tests.marketplace.onnx_fixtures import iris_path, minilm_path, only_error, random_bytes, validate


def test_random_bytes_are_not_an_onnx_model(tmp_path):
    (tmp_path / "model.onnx").write_bytes(random_bytes())

    message = only_error(validate(tmp_path))

    assert message.startswith("The file is not an ONNX model")
    assert "truncated, corrupted or another format" in message


def test_an_empty_file_is_refused(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")

    assert only_error(validate(tmp_path)) == "The model file is empty."


def test_a_truncated_model_is_refused_wherever_it_is_cut(tmp_path):
    data = minilm_path().read_bytes()
    for fraction in (0.1, 0.5, 0.9, 0.999):
        (tmp_path / "model.onnx").write_bytes(data[: int(len(data) * fraction)])

        report = validate(tmp_path)

        assert report["ok"] is False, fraction
        assert report["signature"] is None
        assert report["checks"].get("onnxruntime") != "passed"


def test_a_truncated_small_model_is_refused(tmp_path):
    data = iris_path().read_bytes()
    (tmp_path / "model.onnx").write_bytes(data[: len(data) // 2])

    report = validate(tmp_path)

    assert report["ok"] is False
    assert report["checks"]["parse"] == "failed"


def test_a_serialized_tensor_is_a_protobuf_but_not_a_model(tmp_path):
    # Without a name its fields read as a ModelProto's (dims as ir_version), but there is no graph.
    tensor = numpy_helper.from_array(np.zeros(3, dtype=np.float32))
    (tmp_path / "model.onnx").write_bytes(tensor.SerializeToString())

    message = only_error(validate(tmp_path))

    assert message.startswith("The file is a protobuf message but not an ONNX model: it has no graph")


def test_a_named_tensor_does_not_even_parse_as_a_model(tmp_path):
    tensor = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "weights")
    (tmp_path / "model.onnx").write_bytes(tensor.SerializeToString())

    assert "not an ONNX model" in only_error(validate(tmp_path))


def test_an_empty_model_proto_without_a_graph_is_refused(tmp_path):
    (tmp_path / "model.onnx").write_bytes(onnx.ModelProto(ir_version=8, producer_name="nothing").SerializeToString())

    assert "it has no graph" in only_error(validate(tmp_path))


def test_a_model_file_missing_from_the_version_is_reported(tmp_path):
    assert only_error(validate(tmp_path)) == "The model file “model.onnx” is missing from the version."
