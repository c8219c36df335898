"""Task detection: the rules table of apps/marketplace/onnx/task_detection.py on real and built models."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from apps.marketplace.onnx.task_detection import detect_task, task_from_tags
from tests.marketplace.onnx_fixtures import (
    copy_into,
    detector_model,
    image_classifier_model,
    iris_path,
    minilm_path,
    save,
    sklearn_iris_model,
    vad_like_model,
    validate,
)

SILERO_WHEEL = "silero-vad==6.2.3"


@pytest.fixture(scope="session")
def silero_vad_path(tmp_path_factory) -> Path:
    """silero_vad.onnx taken out of the silero-vad wheel (the package itself needs torch, so it is not
    installed). Set SILERO_VAD_WHEEL to a downloaded wheel, or let pip fetch it; skipped when neither works."""
    folder = tmp_path_factory.mktemp("silero")
    wheel = os.environ.get("SILERO_VAD_WHEEL")
    if not wheel:
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", SILERO_WHEEL, "-d", str(folder)],
                check=True,
                capture_output=True,
                timeout=120,
            )
        except (subprocess.SubprocessError, OSError):
            pytest.skip(f"{SILERO_WHEEL} could not be downloaded (set SILERO_VAD_WHEEL to a local copy)")
        wheel = str(next(folder.glob("silero_vad-*.whl")))
    with zipfile.ZipFile(wheel) as archive:
        target = folder / "silero_vad.onnx"
        target.write_bytes(archive.read("silero_vad/data/silero_vad.onnx"))
    return target


def detected(tmp_path, name: str) -> str | None:
    report = validate(tmp_path, name)
    assert report["ok"] is True, report["errors"]
    return report["detected_task"]


def test_the_iris_classifier_is_tabular_classification(tmp_path):
    assert detected(tmp_path, copy_into(iris_path(), tmp_path)) == "tabular-classification"


def test_an_skl2onnx_classifier_is_tabular_classification(tmp_path):
    assert detected(tmp_path, save(sklearn_iris_model(), tmp_path)) == "tabular-classification"


def test_minilm_is_feature_extraction(tmp_path):
    assert detected(tmp_path, copy_into(minilm_path(), tmp_path)) == "feature-extraction"


def test_silero_vad_is_voice_activity_detection(tmp_path, silero_vad_path):
    report = validate(tmp_path, copy_into(silero_vad_path, tmp_path))

    assert report["ok"] is True, report["errors"]
    assert [entry["name"] for entry in report["signature"]["inputs"]] == ["input", "state", "sr"]
    assert report["signature"]["inputs"][2] == {"name": "sr", "elem_type": "int64", "shape": []}
    assert report["detected_task"] == "voice-activity-detection"


def test_an_image_classifier_is_image_classification(tmp_path):
    assert detected(tmp_path, save(image_classifier_model(), tmp_path)) == "image-classification"


def test_a_model_with_boxes_and_scores_is_object_detection(tmp_path):
    assert detected(tmp_path, save(detector_model(), tmp_path)) == "object-detection"


def test_the_silero_interface_without_its_weights_is_voice_activity_detection(tmp_path):
    assert detected(tmp_path, save(vad_like_model(), tmp_path)) == "voice-activity-detection"


def text_signature(outputs):
    return {
        "inputs": [
            {"name": "input_ids", "elem_type": "int64", "shape": ["batch", "sequence"]},
            {"name": "attention_mask", "elem_type": "int64", "shape": ["batch", "sequence"]},
        ],
        "outputs": outputs,
    }


def test_text_models_are_told_apart_by_their_outputs():
    logits2 = [{"name": "logits", "elem_type": "float32", "shape": ["batch", 2]}]
    logits3 = [{"name": "logits", "elem_type": "float32", "shape": ["batch", "sequence", 9]}]
    qa = [
        {"name": "start_logits", "elem_type": "float32", "shape": ["batch", "sequence"]},
        {"name": "end_logits", "elem_type": "float32", "shape": ["batch", "sequence"]},
    ]
    pooled = [{"name": "sentence_embedding", "elem_type": "float32", "shape": ["batch", 384]}]

    assert detect_task(text_signature(logits2)) == "text-classification"
    assert detect_task(text_signature(logits3)) == "token-classification"
    assert detect_task(text_signature(qa)) == "question-answering"
    assert detect_task(text_signature(pooled)) == "feature-extraction"


def test_audio_and_regression_signatures():
    waveform = {"name": "input_values", "elem_type": "float32", "shape": ["batch", "samples"]}
    asr = {"inputs": [waveform], "outputs": [{"name": "logits", "elem_type": "float32", "shape": ["b", "t", 32]}]}
    audio_cls = {"inputs": [waveform], "outputs": [{"name": "logits", "elem_type": "float32", "shape": ["b", 527]}]}
    regression = {
        "inputs": [{"name": "X", "elem_type": "float32", "shape": [None, 8]}],
        "outputs": [{"name": "variable", "elem_type": "float32", "shape": [None, 1]}],
    }

    assert detect_task(asr) == "automatic-speech-recognition"
    assert detect_task(audio_cls) == "audio-classification"
    assert detect_task(regression) == "tabular-regression"


def test_a_tag_naming_a_task_wins_over_the_signature():
    embeddings = text_signature([{"name": "last_hidden_state", "elem_type": "float32", "shape": ["b", "s", 384]}])

    assert detect_task(embeddings, tags=["sentence-similarity"]) == "sentence-similarity"
    assert detect_task(embeddings, tags=["Embeddings"]) == "feature-extraction"
    assert task_from_tags(["onnx", "vad"]) == "voice-activity-detection"
    assert task_from_tags(["classification"]) is None  # too vague: the signature decides


def test_an_unrecognisable_signature_has_no_task():
    odd = {
        "inputs": [{"name": "a", "elem_type": "bool", "shape": [7]}],
        "outputs": [{"name": "b", "elem_type": "bool", "shape": [7]}],
    }

    assert detect_task(odd) is None
    assert detect_task(None) is None
    assert detect_task({}, tags=["nothing-known"]) is None
