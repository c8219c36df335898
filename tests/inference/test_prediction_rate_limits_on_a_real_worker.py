"""The per-minute prediction quota through the predict API, with a real inference worker answering: a limit of N lets
exactly N predictions through, the next one answers 429 with ``Retry-After`` and a body naming the quota, on the
online path (the default), on the durable path (``?async=1``) and for predictions the online path hands to the
durable one (this process out of waiting slots), which count once, not twice; the refused request is recorded in
usage as nothing at all."""

from __future__ import annotations

from typing import Any

import pytest

from apps.analytics import quotas, usage
from apps.analytics.models import OrganizationQuota, UsageEvent
from apps.core.jobs import FINISHED_STATUSES, Job
from apps.inference.completion import _wait_slots
from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND
from tests.conftest import api_client_for
from tests.inference.online_support import no_waiting_slot_left, predictions_written, wait_for_serving_loop
from tests.jobs_support import wait_for
from tests.usage_support import drained

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
IRIS = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}
LIMIT = 3


@pytest.fixture(autouse=True)
def serving_loop(inference_worker, settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    wait_for_serving_loop()


@pytest.fixture(autouse=True)
def fresh_windows():
    quotas.forget_cached_limits()
    for key in usage.client().scan_iter(f"{quotas.RATE_PREFIX}*"):
        usage.client().delete(key)
    yield
    quotas.forget_cached_limits()


@pytest.fixture
def limited(world, runnable, tmp_path):
    """An iris version of the organization, which may make LIMIT predictions per minute; a member's client bound to
    it."""
    OrganizationQuota.objects.create(organization=world.org, predictions_per_minute=LIMIT)
    quotas.forget_cached_limits()
    version = runnable.iris(tmp_path)
    url = f"/api/v1/models/{world.org.slug}/{version.model.name}/versions/{version.label}/predict"
    return url, api_client_for(world.user("member"), organization=world.org)


def assert_refused_by_the_quota(response) -> None:
    assert response.status_code == 429, response.content
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.json()
    assert (body["code"], body["quota"]) == ("rate_limited", "predictions_per_minute")
    assert f"may make {LIMIT} predictions per minute" in body["detail"]


def predictions() -> Any:
    return Job.objects.filter(kind__in=(PREDICT_KIND, BATCHED_PREDICT_KIND))


def test_online_the_prediction_past_the_limit_answers_429_and_is_not_recorded(world, limited):
    url, client = limited
    answers = [client.post(url, IRIS, format="json") for _ in range(LIMIT + 1)]
    assert [answer.status_code for answer in answers[:LIMIT]] == [200] * LIMIT, answers[-2].content
    assert_refused_by_the_quota(answers[-1])
    assert not predictions_written()
    recorded = drained(UsageEvent).filter(organization=world.org)
    assert {event.hex for event in recorded.values_list("event_id", flat=True)} == {
        answer.json()["id"] for answer in answers[:LIMIT]
    }
    assert not recorded.exclude(status_code=200).exists()


def test_durably_the_prediction_past_the_limit_answers_429_and_writes_no_job(world, limited):
    url, client = limited
    answers = [client.post(url + "?async=1", IRIS, format="json") for _ in range(LIMIT + 1)]
    assert [answer.status_code for answer in answers[:LIMIT]] == [202] * LIMIT, answers[-2].content
    assert_refused_by_the_quota(answers[-1])
    assert predictions().count() == LIMIT
    wait_for(
        lambda: predictions().filter(status__in=FINISHED_STATUSES).count() == LIMIT,
        timeout=60,
        what="the accepted jobs to finish",
    )
    # The worker records each finished job (after each task); the refused request was never a job.
    recorded = wait_for(
        lambda: drained(UsageEvent).filter(organization=world.org, kind="job").count() >= LIMIT and UsageEvent.objects,
        timeout=20,
        what="the worker's usage records",
    )
    recorded = recorded.filter(organization=world.org, metadata__job_kind__in=(PREDICT_KIND, BATCHED_PREDICT_KIND))
    assert sorted(recorded.values_list("subject_id", flat=True)) == sorted(
        answer.json()["job"] for answer in answers[:LIMIT]
    )
    assert set(recorded.values_list("kind", flat=True)) == {"job"}


def test_a_prediction_the_online_path_hands_to_the_durable_one_counts_once(world, limited, settings):
    url, client = limited
    with no_waiting_slot_left(settings):
        answers = [client.post(url, IRIS, format="json") for _ in range(LIMIT + 1)]
    assert [answer.status_code for answer in answers[:LIMIT]] == [202] * LIMIT, answers[1].content
    assert_refused_by_the_quota(answers[-1])
    assert predictions().count() == LIMIT
    assert quotas.requests_in_window("predict", organization_id=world.org.pk) == LIMIT


@pytest.mark.parametrize("path", ["online", "handed to the durable path"])
def test_a_prediction_refused_because_its_deployment_is_full_is_not_counted(world, runnable, tmp_path, settings, path):
    from apps.inference import services
    from apps.inference.predictions import acquire_slot, release_slot

    OrganizationQuota.objects.create(organization=world.org, predictions_per_minute=LIMIT)
    quotas.forget_cached_limits()
    version = runnable.iris(tmp_path)
    deployment = services.create_deployment(
        organization=world.org, model=version.model, actor=world.user("member"), slug="one-at-a-time",
        version=version, concurrency=1,
    )  # fmt: skip
    url = f"/api/v1/orgs/{world.org.slug}/deployments/{deployment.slug}/predict"
    client = api_client_for(world.user("member"), organization=world.org)
    settings.INFERENCE_SYNC_WAITS_PER_PROCESS = 1
    waits = _wait_slots()
    if path != "online":
        assert waits.acquire(blocking=False)  # the online path hands the request over
    assert acquire_slot(deployment)  # another request is in flight on the deployment: it is full
    try:
        refused = client.post(url, IRIS, format="json")
    finally:
        release_slot(deployment)
        if path != "online":
            waits.release()
    assert refused.status_code == 429, refused.content
    assert refused.json()["code"] == "deployment_busy"
    assert quotas.requests_in_window("predict", organization_id=world.org.pk) == 0
    assert client.post(url, IRIS, format="json").status_code == 200
    assert quotas.requests_in_window("predict", organization_id=world.org.pk) == 1
