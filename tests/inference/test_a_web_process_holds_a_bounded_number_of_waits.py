"""A web process waits for at most ``INFERENCE_SYNC_WAITS_PER_PROCESS`` predictions at once, so that however many
callers wait, threads are left for pages: a wait past the limit answers at once (the caller then answers 202 with
the job's URL), and once a waiting request is answered its place is free again. Real Redis (``BLPOP``); the
worker's side is its real ``notify_finished``."""

from __future__ import annotations

import threading

import pytest

from apps.core.jobs import Job, JobStatus
from apps.inference.completion import _client, notify_finished, wait_finished
from tests.jobs_support import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def needs_redis(settings):
    if not settings.REDIS_URL:
        pytest.skip("the wait goes through Redis, as in CI")


def blocked_in_blpop() -> bool:
    """Whether a client of this test's Redis database is blocked in ``BLPOP`` (Redis says so)."""
    client = _client()
    database = client.connection_pool.connection_kwargs.get("db", 0)
    return any(entry.get("cmd") == "blpop" and int(entry.get("db", -1)) == database for entry in client.client_list())


def job_of(world) -> Job:
    return Job.objects.create(kind="inference.predict", organization=world.org)


def test_a_wait_past_the_processs_limit_answers_at_once_and_the_place_frees_when_the_first_is_answered(world, settings):
    settings.INFERENCE_SYNC_WAITS_PER_PROCESS = 1
    first, second = job_of(world), job_of(world)
    outcomes: list = []
    waiting = threading.Thread(target=lambda: outcomes.append(wait_finished(first, 30)))
    waiting.start()
    try:
        wait_for(blocked_in_blpop, timeout=20, what="the first caller to wait")

        # Not made to wait (it would have waited past the first's own timeout): the first holds the only place.
        assert wait_finished(second, 60) is None
        assert waiting.is_alive()
    finally:
        notify_finished(first.uuid, {"status": JobStatus.SUCCEEDED, "result": {"ok": 1}})
        waiting.join(timeout=30)
    assert outcomes == [({"status": JobStatus.SUCCEEDED, "result": {"ok": 1}}, b"")]

    notify_finished(second.uuid, {"status": JobStatus.SUCCEEDED})
    assert wait_finished(second, 30) == ({"status": JobStatus.SUCCEEDED}, b"")  # the place is free again


def test_without_a_limit_every_caller_waits(world, settings):
    settings.INFERENCE_SYNC_WAITS_PER_PROCESS = 0
    jobs = [job_of(world) for _ in range(3)]
    outcomes: dict[int, object] = {}
    threads = [
        threading.Thread(target=lambda job=job: outcomes.__setitem__(job.pk, wait_finished(job, 30))) for job in jobs
    ]
    for thread in threads:
        thread.start()
    for job in jobs:
        notify_finished(job.uuid, {"status": JobStatus.SUCCEEDED})
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == {job.pk: ({"status": JobStatus.SUCCEEDED}, b"") for job in jobs}
