"""Real models pass validation and get their real signatures, facts and tasks."""

from __future__ import annotations

from tests.marketplace.onnx_fixtures import copy_into, iris_path, minilm_path, save, sklearn_iris_model, validate


def test_the_iris_classifier_from_onnxruntime_passes_with_its_signature(tmp_path):
    report = validate(tmp_path, copy_into(iris_path(), tmp_path))

    assert report["ok"] is True, report["errors"]
    assert report["checks"] == {
        "files": "passed",
        "parse": "passed",
        "text": "passed",
        "tensor_sizes": "passed",
        "external_data": "passed",
        "checker": "passed",
        "onnxruntime": "passed",
    }
    assert report["signature"]["inputs"] == [{"name": "float_input", "elem_type": "float32", "shape": [3, 2]}]
    assert report["signature"]["outputs"] == [
        {"name": "label", "elem_type": "int64", "shape": [3]},
        {"name": "probabilities", "elem_type": "seq(map(int64,tensor(float32)))", "shape": None},
    ]
    assert report["signature"]["opsets"] == {"ai.onnx.ml": 1}
    assert report["signature"]["producer"]["name"] == "OnnxMLTools"
    info = report["onnx_info"]
    assert info["ir_version"] == 3
    assert info["custom_domains"] == []
    assert info["op_types"] == {"ai.onnx.ml::LinearClassifier": 1, "ai.onnx.ml::Normalizer": 1, "ai.onnx.ml::ZipMap": 1}
    assert info["file_size"] == iris_path().stat().st_size
    assert report["detected_task"] == "tabular-classification"


def test_minilm_int8_passes_with_symbolic_batch_and_sequence_dimensions(tmp_path):
    report = validate(tmp_path, copy_into(minilm_path(), tmp_path))

    assert report["ok"] is True, report["errors"]
    inputs = {entry["name"]: entry for entry in report["signature"]["inputs"]}
    assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(
        entry == {"name": name, "elem_type": "int64", "shape": ["batch", "sequence"]} for name, entry in inputs.items()
    )
    assert report["signature"]["outputs"] == [
        {"name": "last_hidden_state", "elem_type": "float32", "shape": ["batch", "sequence", 384]}
    ]
    assert report["onnx_info"]["ir_version"] == 10
    assert report["onnx_info"]["opsets"] == {"ai.onnx": 17}
    assert report["onnx_info"]["producer_name"] == "pytorch"
    assert report["onnx_info"]["declared_tensor_bytes"] > 20_000_000
    assert report["detected_task"] == "feature-extraction"


def test_an_sklearn_model_converted_by_skl2onnx_passes_as_tabular_classification(tmp_path):
    report = validate(tmp_path, save(sklearn_iris_model(), tmp_path))

    assert report["ok"] is True, report["errors"]
    assert report["signature"]["inputs"] == [{"name": "X", "elem_type": "float32", "shape": [None, 4]}]
    outputs = {entry["name"]: entry for entry in report["signature"]["outputs"]}
    assert outputs["label"]["elem_type"] == "int64"
    assert outputs["probabilities"] == {"name": "probabilities", "elem_type": "float32", "shape": [None, 3]}
    assert report["onnx_info"]["producer_name"] == "skl2onnx"
    assert "ai.onnx.ml" in report["onnx_info"]["opsets"]  # skl2onnx stamps the opset its operators need
    assert report["detected_task"] == "tabular-classification"
