"""The synchronous prediction API end to end: a request through the API, a real prefork worker on Redis,
the answer with the provider ONNX Runtime really used."""

from __future__ import annotations

import numpy as np
import pytest

from apps.core.jobs import Job, JobStatus
from apps.inference.execution import unpack_tensors
from apps.inference.models import InferenceJob
from tests.conftest import api_client_for
from tests.inference.online_support import predictions_written

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
    assert body["id"] and not predictions_written()  # served online: no job row


def test_the_durable_path_records_the_job_with_the_provider(runnable, inference_worker, world, tmp_path, settings):
    settings.INFERENCE_ONLINE_SERVING = False  # what a durable prediction keeps (async ones, webhooks)
    version = runnable.iris(tmp_path)
    client = api_client_for(world.user("member"))
    response = client.post(predict_url(version), {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}, format="json")
    assert response.status_code == 200, response.content
    job = Job.objects.get(uuid=response.json()["job"])
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


def test_asking_for_the_readable_answer_alone_keeps_no_tensor_with_the_job(runnable, inference_worker, world, settings):
    settings.INFERENCE_ONLINE_SERVING = False  # what the durable path keeps with the job
    version = runnable.minilm()
    client = api_client_for(world.user("member"))

    asked = {"inputs": {"text": "I play the guitar."}, "outputs": []}

    response = client.post(predict_url(version), asked, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["outputs"] == {}
    assert np.asarray(body["answer"]["embeddings"][0]).shape == (384,)
    stored = InferenceJob.objects.get(job__uuid=body["job"])
    assert list(unpack_tensors(stored.outputs)) == []  # the hidden state was not kept
    again = client.get(f"/api/v1/predictions/{body['job']}/")
    assert again.status_code == 200 and again.json()["outputs"] == {}
    assert again.json()["answer"] == body["answer"]


def test_naming_one_output_answers_and_keeps_that_one_only(runnable, inference_worker, world, tmp_path, settings):
    settings.INFERENCE_ONLINE_SERVING = False  # what the durable path keeps with the job
    version = runnable.iris(tmp_path)
    client = api_client_for(world.user("member"))

    response = client.post(
        predict_url(version), {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}, "outputs": ["label"]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert set(response.json()["outputs"]) == {"label"}
    stored = InferenceJob.objects.get(job__uuid=response.json()["job"])
    assert list(unpack_tensors(stored.outputs)) == ["label"]
