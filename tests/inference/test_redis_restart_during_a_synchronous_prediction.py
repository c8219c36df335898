"""Redis restarts (a throwaway redis-server, killed) while synchronous predictions wait: the callers get 503 with
Retry-After naming their job, never a 500; the jobs stay queued and, once Redis is back, the reaper sends them
again and a real worker answers each once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.job_services import reap_stale_jobs
from apps.core.jobs import Job, JobStatus
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.jobs_support import ThrowawayRedis, job_in, purge_broker, redis_at, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def test_callers_waiting_when_redis_restarts_get_503_and_their_jobs_run_once_it_is_back(
    runnable, world, settings, tmp_path, inference_root
):
    version = runnable.iris(tmp_path)
    client = api_client_for(world.user("member"))
    body = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}, "timeout": 20}
    redis = ThrowawayRedis(tmp_path)
    answers = []
    try:
        with redis_at(redis.url, settings):
            # No worker consumes this Redis: both callers wait on their jobs' answers until it goes away.

            def call() -> None:
                try:
                    answers.append(client.post(predict_url(version), body, format="json"))
                finally:
                    connection.close()  # this thread's own database connection

            callers = [threading.Thread(target=call) for _ in range(2)]
            for caller in callers:
                caller.start()
            predictions = Job.objects.filter(kind="inference.predict", status=JobStatus.QUEUED)
            wait_for(lambda: predictions.count() == 2, what="both jobs written")
            time.sleep(0.5)
            redis.kill()
            for caller in callers:
                caller.join(timeout=30)
    finally:
        redis.kill()

    assert [response.status_code for response in answers] == [503, 503], [r.content[:300] for r in answers]
    jobs = []
    for response in answers:
        assert response["Retry-After"] == "30"
        assert response.json()["code"] == "queue_unavailable"
        jobs.append(Job.objects.get(uuid=response.json()["job"]))
    assert {job.status for job in jobs} == {JobStatus.QUEUED}

    # Redis is back (the usual one): the messages died with the old server; the reaper sends the jobs again.
    purge_broker()
    worker = start_inference_worker(inference_root)
    try:
        report = reap_stale_jobs(now=timezone.now() + timedelta(seconds=settings.JOBS_RESEND_AFTER_SECONDS + 1))
        # (the version's validation job, queued on ``checks`` with no worker, is due as well)
        assert {job.pk for job in jobs} <= {resent.pk for resent in report.resent}
        for job in jobs:
            done = wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=60, what="the prediction")
            assert done.status == JobStatus.SUCCEEDED, done.error
            assert done.attempts == 1
            assert done.inference.provider == "CPUExecutionProvider"
    finally:
        worker.terminate()
        worker.wait_stopped()
