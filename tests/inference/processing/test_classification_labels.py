"""Class outputs mapped onto the manifest's labels: the iris classifier given four numbers answers a species
with a score per species."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from apps.inference.processing import ProcessingError, build_processor
from tests.inference.onnx_models import (
    IRIS_LABELS,
    IRIS_MANIFEST,
    cpu_session,
    run_model,
    signature_of,
    sklearn_iris_path,
    version_files,
)
from tests.marketplace.onnx_fixtures import make_model, save

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    path = sklearn_iris_path(tmp_path_factory.mktemp("iris"))
    return cpu_session(path), signature_of(path)


def classify(iris, rows, manifest=IRIS_MANIFEST):
    session, signature = iris
    processor = build_processor(manifest=manifest, signature=signature, file_path=version_files({}))
    inputs = {"float_input": np.array(rows, dtype=np.float32)}
    return processor.postprocess(run_model(session, inputs), inputs)


def with_labels_on(*names):
    outputs = [
        {**entry, "labels": IRIS_LABELS}
        if entry["name"] in names
        else {k: v for k, v in entry.items() if k != "labels"}
        for entry in IRIS_MANIFEST["outputs"]
    ]
    return {**IRIS_MANIFEST, "outputs": outputs}


def test_four_numbers_of_a_setosa_answer_setosa_with_a_score_per_species(iris):
    answer = classify(iris, [SETOSA])

    [prediction] = answer["predictions"]
    assert prediction["label"] == "setosa"
    assert list(prediction["scores"]) == IRIS_LABELS
    assert prediction["scores"]["setosa"] > 0.9
    assert sum(prediction["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_a_batch_answers_one_prediction_per_row(iris):
    answer = classify(iris, [SETOSA, VIRGINICA])

    assert [prediction["label"] for prediction in answer["predictions"]] == ["setosa", "virginica"]


def test_labels_on_the_label_output_alone_still_score_with_the_probabilities(iris):
    [prediction] = classify(iris, [VIRGINICA], with_labels_on("label"))["predictions"]

    assert prediction["label"] == "virginica"
    assert max(prediction["scores"], key=prediction["scores"].get) == "virginica"


def test_labels_on_the_probabilities_alone_map_the_int64_label_output(iris):
    [prediction] = classify(iris, [SETOSA], with_labels_on("probabilities"))["predictions"]

    assert prediction["label"] == "setosa"
    assert set(prediction["scores"]) == set(IRIS_LABELS)


def test_probabilities_are_not_softmaxed_again(iris):
    session = iris[0]
    inputs = {"float_input": np.array([SETOSA], dtype=np.float32)}
    raw = run_model(session, inputs)["probabilities"][0]

    [prediction] = classify(iris, [SETOSA])["predictions"]

    assert list(prediction["scores"].values()) == pytest.approx(raw.tolist(), abs=1e-6)


def test_a_model_without_labels_or_postprocessing_has_nothing_to_add(iris):
    manifest = with_labels_on()

    assert classify(iris, [SETOSA], manifest) is None
    processor = build_processor(manifest=manifest, signature=iris[1], file_path=version_files({}))
    assert processor.describe() == {
        "kind": "tensors",
        "fields": [{"name": "float_input", "type": "float32", "shape": [None, 4]}],
        "answer": "tensors",
    }


def logits_model(tmp_path):
    """x float [N, 2] -> MatMul by a fixed [2, 3] -> logits float [N, 3] (not probabilities)."""
    weights = numpy_helper.from_array(np.array([[4.0, 0.0, -4.0], [0.0, 1.0, 0.0]], dtype=np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["logits"], name="matmul")
    model = make_model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializers=[weights],
    )
    return tmp_path / save(model, tmp_path)


LOGITS_MANIFEST = {
    "name": "logits",
    "version": "1.0.0",
    "model": {"source": "./model.onnx", "format": "onnx"},
    "inputs": [{"name": "x", "type": "float32", "shape": ["N", 2], "required": True}],
    "outputs": [{"name": "logits", "type": "float32", "shape": ["N", 3], "labels": ["cat", "dog", "bird"]}],
}


def test_logits_are_softmaxed_into_scores(tmp_path):
    path = logits_model(tmp_path)
    processor = build_processor(manifest=LOGITS_MANIFEST, signature=signature_of(path), file_path=version_files({}))
    inputs = {"x": np.array([[1.0, 0.0]], dtype=np.float32)}

    [prediction] = processor.postprocess(run_model(cpu_session(path), inputs), inputs)["predictions"]

    expected = np.exp([4.0, 0.0, -4.0]) / np.exp([4.0, 0.0, -4.0]).sum()
    assert prediction["label"] == "cat"
    assert list(prediction["scores"].values()) == pytest.approx(expected.tolist(), abs=1e-6)


def test_softmax_without_labels_names_the_classes_by_index(tmp_path):
    path = logits_model(tmp_path)
    manifest = {
        **LOGITS_MANIFEST,
        "outputs": [{"name": "logits", "type": "float32", "shape": ["N", 3]}],
        "postprocessing": {"softmax": True},
    }
    processor = build_processor(manifest=manifest, signature=signature_of(path), file_path=version_files({}))
    inputs = {"x": np.array([[-1.0, 0.0]], dtype=np.float32)}

    [prediction] = processor.postprocess(run_model(cpu_session(path), inputs), inputs)["predictions"]

    assert prediction["label"] == "2"
    assert list(prediction["scores"]) == ["0", "1", "2"]


def test_more_labels_than_the_model_has_classes_is_refused_at_build(iris):
    manifest = {
        **IRIS_MANIFEST,
        "outputs": [{"name": "probabilities", "type": "float32", "shape": [None, 3], "labels": ["a", "b", "c", "d"]}],
    }

    with pytest.raises(ProcessingError) as caught:
        build_processor(manifest=manifest, signature=iris[1], file_path=version_files({}))

    assert caught.value.code == "bad_manifest"
    assert caught.value.errors == {
        "outputs.probabilities.labels": ["4 labels, but the output probabilities has 3 scores per item"]
    }


def test_the_iris_classifier_from_onnxruntime_maps_its_score_mappings_onto_labels():
    from onnxruntime.datasets import get_example

    path = get_example("logreg_iris.onnx")
    signature = signature_of(path)
    manifest = {
        "name": "logreg-iris",
        "outputs": [
            {"name": "label", "type": "int64", "shape": [3], "labels": IRIS_LABELS},
            {"name": "probabilities", "type": signature["outputs"][1]["elem_type"], "shape": None},
        ],
    }
    processor = build_processor(manifest=manifest, signature=signature, file_path=version_files({}))
    inputs = {"float_input": np.array([[5.1, 3.5], [6.7, 3.0], [5.0, 3.6]], dtype=np.float32)}

    predictions = processor.postprocess(run_model(cpu_session(path), inputs), inputs)["predictions"]

    assert len(predictions) == 3
    assert all(prediction["label"] in IRIS_LABELS for prediction in predictions)
    assert all(set(prediction["scores"]) == set(IRIS_LABELS) for prediction in predictions)
    assert all(
        max(prediction["scores"], key=prediction["scores"].get) == prediction["label"] for prediction in predictions
    )
