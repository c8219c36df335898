"""Time limits on a prefork worker (the pool that enforces them): a job past its limit fails, saying why."""

from __future__ import annotations

import pytest

from apps.core.job_services import start_job
from apps.core.jobs import JobStatus
from tests.jobs_support import job_in, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_job_that_runs_past_its_time_limit_is_stopped_and_failed(worker_processes, world):
    worker_processes(pool="prefork").wait_ready()
    job = start_job(
        kind="test.sleep",
        organization=world.org,
        creator=world.user("admin"),
        params={"steps": 100, "pause": 0.05},
        time_limit=1,
        queue="sync",
    )

    failed = wait_for(job_in(job, JobStatus.FAILED, JobStatus.SUCCEEDED), timeout=30, what="the job to end")

    assert failed.status == JobStatus.FAILED
    assert failed.error == "Ran past its time limit of 1 s and was stopped."
    assert "SoftTimeLimitExceeded" in failed.traceback
    assert 0 < failed.progress < 1
    assert failed.attempts == 1
