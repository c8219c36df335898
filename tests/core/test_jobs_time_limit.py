"""Time limits on a prefork worker (the pool that enforces them): a job past its limit fails, saying why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.job_services import reap_stale_jobs, start_job
from apps.core.jobs import JobStatus
from tests.jobs_support import job_in, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_job_that_runs_past_its_time_limit_is_stopped_and_failed(worker_processes, world):
    worker_processes(pool="prefork").wait_ready()
    job = start_job(
        kind="test.sleep",
        organization=world.org,
        creator=world.user("admin"),
        # 12 s of work against a 3 s limit: long enough that a loaded machine still reports progress first.
        params={"steps": 240, "pause": 0.05},
        time_limit=3,
        queue="sync",
    )

    failed = wait_for(job_in(job, JobStatus.FAILED, JobStatus.SUCCEEDED), timeout=40, what="the job to end")

    assert failed.status == JobStatus.FAILED
    assert failed.error == "Ran past its time limit of 3 s and was stopped."
    assert "SoftTimeLimitExceeded" in failed.traceback
    assert 0 < failed.progress < 1
    assert failed.attempts == 1


def test_a_job_killed_at_its_hard_time_limit_fails_saying_it_passed_its_time_limit(worker_processes, world, settings):
    # The hard limit comes 2 s after the soft one here (30 s by default): the message carries both.
    settings.JOBS_HARD_LIMIT_MARGIN_SECONDS = 2
    worker = worker_processes(pool="prefork").wait_ready()
    job = start_job(
        kind="test.ignore_soft_time_limit",
        organization=world.org,
        creator=world.user("admin"),
        params={"seconds": 60},
        time_limit=1,
        queue="sync",
    )

    failed = wait_for(job_in(job, JobStatus.FAILED, JobStatus.SUCCEEDED), timeout=30, what="the job to end")

    assert failed.status == JobStatus.FAILED
    assert failed.error == (
        "Ran past its time limit of 1 s and did not stop: the worker killed it at the hard limit (3 s)."
    )
    assert failed.attempts == 1
    assert failed.finished_at is not None
    assert "Hard time limit (3s) exceeded" in worker.log()
    # Nothing is left for the reaper: the job is not run again into the same limit.
    assert reap_stale_jobs(now=timezone.now() + timedelta(hours=1)).requeued == []
