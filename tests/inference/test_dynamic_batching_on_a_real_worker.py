"""Dynamic batching: concurrent requests to a batching deployment are merged on the worker (celery-batches),
run once and split back; each answer equals the one its request gets alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.db import connection

from apps.inference import services
from apps.inference.models import InferenceJob
from tests.conftest import api_client_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SENTENCES = [
    "I play the guitar every evening.",
    "The bass player tuned his strings.",
    "Quarterly revenue grew by four percent.",
    "Rain is expected tomorrow.",
    "She bought a new acoustic guitar.",
    "The model runs on a GPU worker.",
    "Paris is the capital of France.",
    "A short one.",
] * 2


def _deploy(world, version, **settings):
    return services.create_deployment(
        organization=world.org,
        model=version.model,
        actor=world.user("member"),
        slug="embed",
        version=version,
        **settings,
    )


def _predict(user, url: str, text: str) -> dict:
    try:
        response = api_client_for(user).post(url, {"inputs": {"text": text}}, format="json")
        assert response.status_code == 200, response.content
        return response.json()
    finally:
        connection.close()


def test_concurrent_requests_are_merged_and_each_gets_its_own_answer(runnable, inference_worker, world, settings):
    settings.INFERENCE_ONLINE_SERVING = (
        False  # batched jobs (online batching: test_online_predictions_on_a_real_worker)
    )
    version = runnable.minilm()
    deployment = _deploy(world, version, max_batch_size=16, max_delay_ms=50)
    url = f"/api/v1/orgs/acme/deployments/{deployment.slug}/predict"
    member = world.user("member")
    alone = {text: _predict(member, url, text) for text in SENTENCES[:3]}
    with ThreadPoolExecutor(max_workers=len(SENTENCES)) as pool:
        answers = list(pool.map(lambda text: _predict(member, url, text), SENTENCES))
    sizes = [answer["batch_size"] for answer in answers]
    assert max(sizes) > 1, f"no request was merged with another: {sizes}"
    for text, answer in zip(SENTENCES, answers, strict=True):
        assert answer["deployment"] == "acme/embed"
        if text in alone:
            merged = np.asarray(answer["answer"]["embeddings"][0])
            single = np.asarray(alone[text]["answer"]["embeddings"][0])
            assert np.allclose(merged, single, atol=1e-4), text
    jobs = InferenceJob.objects.filter(deployment=deployment)
    assert jobs.count() == len(SENTENCES) + 3
    assert set(jobs.values_list("revision__number", flat=True)) == {1}


def test_a_deployment_without_batching_runs_each_request_alone(runnable, inference_worker, world, tmp_path):
    version = runnable.iris(tmp_path)
    deployment = _deploy(world, version, max_batch_size=1)
    url = f"/api/v1/orgs/acme/deployments/{deployment.slug}/predict"
    client = api_client_for(world.user("member"))
    response = client.post(url, {"inputs": {"float_input": [[6.7, 3.0, 5.2, 2.3]]}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["batch_size"] == 1
    assert response.json()["answer"]["predictions"][0]["label"] == "virginica"
