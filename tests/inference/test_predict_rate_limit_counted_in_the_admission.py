"""The prediction routes' own rate limit (``PredictThrottle``, ``API_THROTTLE_PREDICT`` per user) counted once per
request, where it costs no round trip of its own: on the online path in the Redis script that admits the request to
its queue, on the durable path before its job is written, and for a request refused before either (bad inputs) when
it is answered. A real inference worker answers. Past the rate: 429 with ``Retry-After``, nothing queued, no job."""

from __future__ import annotations

import pytest

from apps.core.api import throttling
from apps.inference.api.views import PredictThrottle
from apps.inference.online import gateway
from tests.conftest import api_client_for
from tests.inference.online_support import (
    forget_online_requests,
    no_waiting_slot_left,
    predictions_written,
    queued,
    wait_for_serving_loop,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
IRIS = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}
RATE = 3


@pytest.fixture(autouse=True)
def serving_loop(inference_worker, settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    forget_online_requests()
    wait_for_serving_loop()
    yield
    # The durable jobs a test started run on after it answered: let the worker finish writing them first, or the
    # teardown's TRUNCATE and the worker's outcome deadlock on the job tables (seen once in a full run).
    from apps.core.jobs import Job, JobStatus
    from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND
    from tests.jobs_support import wait_for

    running = Job.objects.filter(
        kind__in=(PREDICT_KIND, BATCHED_PREDICT_KIND), status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
    )
    wait_for(
        lambda: not running.exists(),
        timeout=60,
        what="the test's durable jobs to finish",
    )


@pytest.fixture(autouse=True)
def low_rate(monkeypatch):
    monkeypatch.setattr(
        PredictThrottle, "THROTTLE_RATES", {**PredictThrottle.THROTTLE_RATES, "predict": f"{RATE}/minute"}
    )
    client = gateway._client()
    for key in client.scan_iter("*throttle_predict_*"):
        client.delete(key)


@pytest.fixture
def iris(world, runnable, tmp_path):
    version = runnable.iris(tmp_path)
    url = f"/api/v1/models/{world.org.slug}/{version.model.name}/versions/{version.label}/predict"
    return url, api_client_for(world.user("member"), organization=world.org)


def counted(world) -> int:
    """What the member's current window of the predict rate holds."""
    client = gateway._client()
    values = [int(client.get(key)) for key in client.scan_iter(f"*throttle_predict_{world.user('member').pk}:w*")]
    return sum(values)


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["code"] == "throttled"


def test_online_predictions_count_once_in_their_admission_and_the_one_past_the_rate_is_not_queued(
    world, iris, monkeypatch
):
    def no_round_trip_of_its_own(*args, **kwargs):
        raise AssertionError("the online path counted the rate in a round trip of its own")

    monkeypatch.setattr(throttling.WindowedRateThrottle, "allow_request", no_round_trip_of_its_own)
    url, client = iris
    answers = [client.post(url, IRIS, format="json") for _ in range(RATE)]
    assert [answer.status_code for answer in answers] == [200] * RATE, [answer.content[:300] for answer in answers]
    assert counted(world) == RATE  # once each, not once in DRF and again in the admission
    refused = client.post(url, IRIS, format="json")
    assert_throttled(refused)
    assert queued() == 0
    assert not predictions_written()


def test_durable_predictions_count_before_their_job_is_written(world, iris):
    url, client = iris
    answers = [client.post(url + "?async=1", IRIS, format="json") for _ in range(RATE)]
    assert [answer.status_code for answer in answers] == [202] * RATE, answers[-1].content
    assert counted(world) == RATE
    refused = client.post(url + "?async=1", IRIS, format="json")
    assert_throttled(refused)
    from apps.core.jobs import Job

    assert Job.objects.filter(uuid__in=[answer.json()["job"] for answer in answers]).count() == RATE
    assert counted(world) == RATE + 1  # the refused one counted too, as DRF counts refusals


def test_a_prediction_the_online_path_hands_over_counts_once(world, iris, settings):
    url, client = iris
    with no_waiting_slot_left(settings):
        answers = [client.post(url, IRIS, format="json") for _ in range(RATE + 1)]
    assert [answer.status_code for answer in answers[:RATE]] == [202] * RATE, answers[0].content
    assert_throttled(answers[-1])


def test_a_request_refused_for_its_inputs_counts_too(world, iris):
    url, client = iris
    bad = client.post(url, {"inputs": {"float_input": [["a", 1, 2, 3]]}}, format="json")
    assert bad.status_code == 400, bad.content
    assert counted(world) == 1
    assert [client.post(url, IRIS, format="json").status_code for _ in range(RATE - 1)] == [200] * (RATE - 1)
    assert_throttled(client.post(url, IRIS, format="json"))


def test_without_a_redis_cache_drf_counts_the_rate_itself(world, iris, monkeypatch):
    """A cache that is not Redis (``_redis_of_cache`` finds none): the throttle cannot go into the admission
    script; DRF's own counting refuses past the rate all the same."""
    from django.core.cache import cache

    monkeypatch.setattr(throttling, "_redis_of_cache", lambda _cache: None)
    cache.clear()
    url, client = iris
    answers = [client.post(url, IRIS, format="json") for _ in range(RATE)]
    assert [answer.status_code for answer in answers] == [200] * RATE, answers[-1].content
    assert counted(world) == 0  # nothing went into the admission's windows
    assert_throttled(client.post(url, IRIS, format="json"))
