"""Helpers of the batch job tests (tests/inference/test_batch_*.py): the iris data as a CSV, batch URLs, reading
results files back."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.inference.onnx_models import IRIS_LABELS

IRIS_HEADER = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)"


def iris_data() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's iris data: 150 rows of 4 measurements, and the species of each (0, 1, 2)."""
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    return features, labels


def iris_csv(features: np.ndarray | None = None, *, replace: dict[int, str] | None = None) -> bytes:
    """The iris measurements as a CSV with sklearn's column names; ``replace`` swaps row i's text for another."""
    if features is None:
        features, _ = iris_data()
    lines = [IRIS_HEADER]
    for index, row in enumerate(features):
        lines.append((replace or {}).get(index, ",".join(f"{value:g}" for value in row)))
    return ("\n".join(lines) + "\n").encode()


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def batch_url(version) -> str:
    model = version.model
    return f"/api/v1/models/{model.organization.slug}/{model.name}/versions/{version.label}/batch"


def job_url(uuid: Any) -> str:
    return f"/api/v1/batch-jobs/{uuid}/"


def results_url(uuid: Any) -> str:
    return f"/api/v1/batch-jobs/{uuid}/results"


def body_of(response) -> bytes:
    """The bytes of a file or streamed response."""
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content)
    return response.content


def jsonl_records(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def npz_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def predicted_species(record: dict[str, Any]) -> str:
    return record["answer"]["predictions"][0]["label"]


def accuracy(records: list[dict[str, Any]], labels: np.ndarray) -> float:
    right = sum(predicted_species(record) == IRIS_LABELS[int(labels[record["row"]])] for record in records)
    return right / len(labels)


def iris_version(runnable, model_path, **kwargs):
    """A runnable iris version from a model file made once (training and converting it takes a second or two)."""
    from tests.inference.onnx_models import IRIS_MANIFEST

    return runnable.version(kwargs.pop("name", "iris"), {"model.onnx": model_path}, IRIS_MANIFEST, **kwargs)
