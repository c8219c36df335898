"""Online predictions that fail on a real prefork worker answer why, as durable ones do
(test_reliability_jobs_that_fail_on_the_worker_say_why.py), with no job row: text to a model without a tokenizer
400 naming ``inputs.text``; a model ONNX Runtime cannot load 422 with its reason; outputs over the cap 422 with both
sizes; a run past its deployment's time limit 422, and the same loop serves the next request."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from apps.inference import services
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.inference.edge_models import (
    SLOW_MANIFEST,
    UNKNOWN_DOMAIN,
    UNKNOWN_OP,
    UNLOADABLE_MANIFEST,
    iris_version,
    slow_model_bytes,
    steps_for_seconds,
    unloadable_model_bytes,
)
from tests.inference.online_support import predictions_written, wait_for_serving_loop

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
OUTPUT_LIMIT = 1000


@pytest.fixture(scope="module")
def capped_worker(inference_root, django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    with django_db_blocker.unblock():
        jobs_support.purge_broker()
        worker = start_inference_worker(inference_root, env={"INFERENCE_MAX_OUTPUT_BYTES": str(OUTPUT_LIMIT)})
    yield worker
    worker.kill()
    with django_db_blocker.unblock():
        jobs_support.purge_broker()


@pytest.fixture(autouse=True)
def serving_loop(capped_worker, settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    wait_for_serving_loop()


def version_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def test_text_to_a_model_without_a_tokenizer_answers_400_naming_the_input(runnable, world):
    version = iris_version(runnable)
    client = api_client_for(world.user("member"))
    response = client.post(version_url(version), {"inputs": {"text": "a flower with long petals"}}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert response.json()["inputs.text"][0]
    assert not predictions_written()


def test_a_model_that_fails_to_load_answers_422_with_onnx_runtimes_reason(runnable, world):
    version = runnable.version("frobnicator", {"model.onnx": unloadable_model_bytes()}, UNLOADABLE_MANIFEST)
    client = api_client_for(world.user("member"))
    response = client.post(version_url(version), {"inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}, format="json")
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert "ONNX Runtime could not load the model" in detail
    assert f"{UNKNOWN_DOMAIN}:{UNKNOWN_OP}" in detail


def test_outputs_over_the_cap_fail_with_how_many_bytes_and_the_limit(runnable, world):
    version = runnable.minilm()
    client = api_client_for(world.user("member"))
    response = client.post(version_url(version), {"inputs": {"text": "I play the guitar."}}, format="json")
    assert response.status_code == 422, response.content
    assert re.search(r"returned ([\d,]+) bytes of output; the limit is 1,000 bytes", response.json()["detail"])


def test_a_run_past_its_time_limit_answers_422_and_the_loop_serves_the_next(runnable, world):
    version = runnable.version("slow", {"model.onnx": slow_model_bytes()}, SLOW_MANIFEST)
    deployment = services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="slow", version=version,
        timeout_seconds=1,
    )  # fmt: skip
    client = api_client_for(world.user("member"))
    url = f"/api/v1/orgs/{world.org.slug}/deployments/{deployment.slug}/predict"
    response = client.post(url, {"inputs": {"steps": [steps_for_seconds(6)]}}, format="json")
    assert response.status_code == 422, response.content
    assert "ran past its time limit of 1 s" in response.json()["detail"]
    following = client.post(url, {"inputs": {"steps": [5]}}, format="json")
    assert following.status_code == 200, following.content
    assert not predictions_written()
