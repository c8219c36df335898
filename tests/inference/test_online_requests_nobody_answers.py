"""The web side of online serving without a worker behind it (a serving loop that beat, then went quiet): the caller
answers 503 ``not_answered`` with ``Retry-After`` at its timeout, never a hang or a 500, and the request is recorded
once; a web process that already holds its most waiting requests sends the next one the durable way (202 with its
job), so pages keep their threads."""

from __future__ import annotations

import pytest

from apps.analytics.models import UsageEvent
from apps.inference.completion import _wait_slots
from apps.inference.online import gateway
from tests.conftest import api_client_for
from tests.inference.edge_models import iris_version
from tests.inference.online_support import forget_online_requests, predictions_written, queued
from tests.usage_support import drained

pytestmark = pytest.mark.django_db
IRIS = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}, "timeout": 0.5}


@pytest.fixture(autouse=True)
def a_loop_seems_up(monkeypatch, settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    forget_online_requests()
    monkeypatch.setattr(gateway, "loop_up", lambda queue: True)
    yield
    forget_online_requests()


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def test_no_answer_within_the_timeout_is_a_503_with_retry_after_recorded_once(runnable, world):
    version = iris_version(runnable)
    response = api_client_for(world.user("member")).post(predict_url(version), IRIS, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "not_answered"
    assert int(response["Retry-After"]) >= 1
    assert queued() == 1  # left for a loop to drop: its deadline passed
    assert not predictions_written()
    event = drained(UsageEvent).get()
    assert (event.status_code, event.outcome) == (503, "error")


def test_a_process_out_of_waiting_slots_takes_the_durable_path(runnable, world, settings):
    settings.INFERENCE_SYNC_WAITS_PER_PROCESS = 1
    version = iris_version(runnable)
    slots = _wait_slots()
    assert slots.acquire(blocking=False)  # another request waits already
    try:
        response = api_client_for(world.user("member")).post(predict_url(version), IRIS, format="json")
    finally:
        slots.release()
    assert response.status_code == 202, response.content
    assert response.json()["job"] and predictions_written()
    assert queued() == 0


def deployment_of(runnable, world, *, concurrency: int):
    from apps.inference import services

    version = iris_version(runnable)
    return services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="capped", version=version,
        concurrency=concurrency,
    )  # fmt: skip


def in_flight(deployment) -> int:
    from apps.inference.predictions import slot_key

    return int(gateway._client().get(slot_key(deployment)) or 0)


def deployment_url(deployment) -> str:
    return f"/api/v1/orgs/{deployment.organization.slug}/deployments/{deployment.slug}/predict"


def test_a_deployment_at_its_concurrency_refuses_with_429_and_sends_nothing(runnable, world):
    """Admission and push are one script (``gateway.ADMIT``): a full deployment queues nothing and counts nothing."""
    from apps.inference.predictions import slot_key

    deployment = deployment_of(runnable, world, concurrency=2)
    gateway._client().set(slot_key(deployment), 2)  # two requests in flight through other web processes
    response = api_client_for(world.user("member")).post(deployment_url(deployment), IRIS, format="json")
    assert response.status_code == 429, response.content
    assert "2 requests in flight" in response.json()["detail"]
    assert queued() == 0 and in_flight(deployment) == 2
    assert not predictions_written()
    assert not drained(UsageEvent).exists()  # refused before it was sent: not a prediction


def test_a_request_admitted_under_the_cap_gives_its_slot_back_when_it_ends(runnable, world):
    from apps.inference.predictions import slot_key

    deployment = deployment_of(runnable, world, concurrency=2)
    gateway._client().set(slot_key(deployment), 1)
    response = api_client_for(world.user("member")).post(deployment_url(deployment), IRIS, format="json")
    assert response.status_code == 503, response.content  # sent, and nobody answered within its timeout
    assert queued() == 1
    assert in_flight(deployment) == 1  # counted while it waited, given back when it ended
    assert 0 < gateway._client().ttl(slot_key(deployment)) <= deployment.timeout_seconds * 2
