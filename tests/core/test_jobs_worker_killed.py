"""A worker killed with SIGKILL mid-job: the reaper re-queues the job and another worker runs it to one result."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from apps.core.job_services import reap_stale_jobs, reaper_grace, start_job
from apps.core.jobs import Job, JobStatus
from tests.jobs_support import job_in, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_job_whose_worker_is_killed_is_reaped_and_run_again_to_one_result(worker_processes, world):
    workers = [worker_processes(), worker_processes()]
    for worker in workers:
        worker.wait_ready()
    job = start_job(
        kind="test.sleep",
        organization=world.org,
        creator=world.user("admin"),
        params={"steps": 30, "pause": 0.05},
        time_limit=5,
        queue="sync",
    )

    # Once the job is visibly under way, SIGKILL the worker running it (the sleep job reports its pid).
    running = wait_for(
        lambda: Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, progress__gt=0).first(),
        what="the job to report progress",
    )
    pid = int(re.search(r"in pid (\d+)", running.progress_message).group(1))
    killed = next(worker for worker in workers if worker.pid == pid)
    survivor = next(worker for worker in workers if worker is not killed)
    killed.kill()

    stale = Job.objects.get(pk=job.pk)
    assert (stale.status, stale.attempts) == (JobStatus.RUNNING, 1)
    assert 0 < stale.progress < 1

    # Within its time limit plus grace the reaper leaves the job alone: its worker might still be alive.
    assert reap_stale_jobs().requeued == []
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
    # Past it, the job is re-queued and sent again; the surviving worker picks it up.
    later = stale.heartbeat_at + timedelta(seconds=stale.time_limit + reaper_grace() + 1)
    report = reap_stale_jobs(now=later)
    assert [reaped.pk for reaped in report.requeued] == [job.pk]
    assert report.requeued[0].status == JobStatus.QUEUED
    assert "was lost" in report.requeued[0].progress_message

    done = wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=30, what="the second attempt")
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.attempts == 2
    assert done.result == {"steps": 30, "pid": survivor.pid, "attempt": 2}
    assert done.progress == 1.0
