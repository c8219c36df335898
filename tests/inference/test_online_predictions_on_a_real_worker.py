"""Synchronous predictions are served online when a worker's serving loop is up (apps/inference/online/): the
answer comes from a real prefork worker, no Job row is written, the request is recorded once in the usage stream;
an asynchronous request (``?async=1``, ``Prefer: respond-async``) takes the durable path; a batching deployment
merges concurrent requests; refused inputs answer 400 naming the input with nothing queued; KServe v2 infer too."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.db import connection

from apps.analytics.models import UsageEvent
from apps.core.jobs import Job
from apps.inference import services as inference
from tests.conftest import api_client_for
from tests.inference.online_support import predictions_written, queued, wait_for_serving_loop
from tests.usage_support import drained

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
IRIS = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}


@pytest.fixture(autouse=True)
def serving_loop(inference_worker, settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    wait_for_serving_loop()


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def test_a_synchronous_prediction_is_answered_online_and_writes_no_job(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    client = api_client_for(world.user("member"))
    response = client.post(predict_url(version), IRIS, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["answer"]["predictions"][0]["label"] == "setosa"
    assert body["provider"] == "CPUExecutionProvider"
    assert body["id"] and "job" not in body
    assert not predictions_written()


def test_each_online_request_is_recorded_once_with_who_what_and_how_long(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    member = world.user("member")
    client = api_client_for(member)
    body = client.post(predict_url(version), IRIS, format="json").json()
    event = drained(UsageEvent).get()
    assert event.event_id.hex == body["id"]
    assert (event.kind, event.actor_id, event.version_id, event.model_id) == (
        "prediction",
        member.pk,
        version.pk,
        version.model_id,
    )
    assert event.token_id is not None and event.status_code == 200 and event.items == 1
    assert event.latency_ms > 0 and event.bytes > 0 and event.metadata["online"] is True


@pytest.mark.parametrize("how", ["query", "prefer"])
def test_an_asynchronous_request_takes_the_durable_path(runnable, world, tmp_path, how):
    version = runnable.iris(tmp_path)
    client = api_client_for(world.user("member"))
    if how == "query":
        response = client.post(predict_url(version) + "?async=1", IRIS, format="json")
    else:
        response = client.post(predict_url(version), IRIS, format="json", HTTP_PREFER="respond-async")
    assert response.status_code == 202, response.content
    assert Job.objects.filter(uuid=response.json()["job"]).exists()


def test_a_batching_deployment_merges_concurrent_requests(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    member = world.user("member")
    deployment = inference.create_deployment(
        organization=world.org, model=version.model, actor=member, slug="batched", version=version,
        max_batch_size=16, max_delay_ms=20,
    )  # fmt: skip
    url = f"/api/v1/orgs/{world.org.slug}/deployments/{deployment.slug}/predict"

    def call(_):
        try:
            return api_client_for(member).post(url, IRIS, format="json")
        finally:
            connection.close()

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(call, range(36)))
    assert [answer.status_code for answer in answers] == [200] * 36
    bodies = [answer.json() for answer in answers]
    assert {body["deployment"] for body in bodies} == {str(deployment)}
    assert {body["revision"] for body in bodies} == {deployment.revision}
    assert max(body["batch_size"] for body in bodies) > 1
    # Each answered request's place was given back by the loop with its answer: nothing stays counted in flight.
    from apps.inference.online import gateway
    from apps.inference.predictions import slot_key

    assert int(gateway._client().get(slot_key(deployment)) or 0) == 0


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"float_input": [[5.1, 3.5, 1.4]]}, "inputs.float_input"),
        ({"float_input": [["a", "b", "c", "d"]]}, "inputs.float_input"),
        ({"petals": [[1, 2, 3, 4]]}, "inputs.petals"),
    ],
)
def test_refused_inputs_answer_400_naming_the_input_and_queue_nothing(runnable, world, tmp_path, inputs, field):
    version = runnable.iris(tmp_path)
    client = api_client_for(world.user("member"))
    response = client.post(predict_url(version), {"inputs": inputs}, format="json")
    assert response.status_code == 400, response.content
    assert any(key.startswith(field) or key == "inputs" for key in response.json()), response.json()
    assert queued() == 0
    assert not predictions_written()


def test_an_oversized_request_answers_400_and_queues_nothing(runnable, world, tmp_path, settings):
    settings.INFERENCE_MAX_REQUEST_BYTES = 64
    version = runnable.iris(tmp_path)
    client = api_client_for(world.user("member"))
    rows = [[5.1, 3.5, 1.4, 0.2]] * 50
    response = client.post(predict_url(version), {"inputs": {"float_input": rows}}, format="json")
    assert response.status_code == 400, response.content
    assert "inputs" in str(response.json())
    assert queued() == 0


def test_kserve_v2_infer_is_answered_online(runnable, world, tmp_path):
    version = runnable.iris(tmp_path)
    client = api_client_for(world.user("member"))
    request = {"inputs": [{"name": "float_input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
    response = client.post(f"/v2/models/{world.org.slug}--{version.model.name}/infer", request, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["label"]["data"] == [0]
    assert np.asarray(outputs["probabilities"]["data"]).size == 3
    assert body["parameters"]["id"] and not predictions_written()
