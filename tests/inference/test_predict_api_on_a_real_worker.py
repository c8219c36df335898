"""The synchronous prediction API end to end: a request through the API, a real prefork worker on Redis,
the answer with the provider ONNX Runtime really used."""

from __future__ import annotations

import numpy as np
import pytest

from apps.core.jobs import Job, JobStatus
from apps.inference.models import InferenceJob
from tests.conftest import api_client_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def predict_url(version, suffix: str = "predict") -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/{suffix}"


def test_iris_with_four_numbers_answers_the_species_and_the_provider(runnable, inference_worker, world, tmp_path):
    version = runnable.iris(tmp_path)
    client = api_client_for(world.user("member"))
    response = client.post(predict_url(version), {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["provider"] == "CPUExecutionProvider"
    assert body["outputs"]["label"] == [0]
    assert np.asarray(body["outputs"]["probabilities"]).shape == (1, 3)
    assert body["answer"]["predictions"][0]["label"] == "setosa"
    job = Job.objects.get(uuid=body["job"])
    assert job.status == JobStatus.SUCCEEDED
    assert InferenceJob.objects.get(job=job).provider == "CPUExecutionProvider"


def test_minilm_with_a_sentence_answers_a_normalized_embedding(runnable, inference_worker, world):
    version = runnable.minilm()
    client = api_client_for(world.user("member"))
    response = client.post(predict_url(version), {"inputs": {"text": "I play the guitar."}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    embedding = np.asarray(body["answer"]["embeddings"][0])
    assert embedding.shape == (384,)
    assert abs(float(np.linalg.norm(embedding)) - 1.0) < 1e-3
