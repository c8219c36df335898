"""Jobs on a real worker (in a thread): success with progress, a crash with its traceback, a double delivery."""

from __future__ import annotations

import pytest
from celery.signals import task_postrun

from apps.core.job_services import start_job
from apps.core.jobs import Job, JobStatus
from tests import jobs_support
from tests.jobs_support import job_in, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_job_runs_to_success_and_records_its_progress_and_result(job_worker, world):
    job = start_job(
        kind="test.sleep", organization=world.org, creator=world.user("admin"), params={"steps": 4, "pause": 0.05}
    )
    seen_progress = set()

    def finished():
        fresh = Job.objects.get(pk=job.pk)
        if fresh.status == JobStatus.RUNNING:
            seen_progress.add(fresh.progress)
        return fresh if fresh.status == JobStatus.SUCCEEDED else None

    done = wait_for(finished, interval=0.01, what="the job to succeed")
    assert done.result["steps"] == 4
    assert done.attempts == 1
    assert done.progress == 1.0
    assert done.progress_message.startswith("step 4 of 4")
    assert done.started_at <= done.heartbeat_at <= done.finished_at
    assert done.error == "" and done.traceback == ""
    assert any(0.0 < fraction < 1.0 for fraction in seen_progress), seen_progress


def test_a_job_that_crashes_records_its_error_and_traceback(job_worker, world):
    job = start_job(kind="test.crash", organization=world.org, creator=world.user("admin"))

    failed = wait_for(job_in(job, JobStatus.FAILED, JobStatus.SUCCEEDED), what="the job to fail")
    assert failed.status == JobStatus.FAILED
    assert failed.error == f"RuntimeError: boom in job {job.uuid}"
    assert "Traceback (most recent call last)" in failed.traceback
    assert "explode_with_a_recognizable_frame" in failed.traceback
    assert failed.result is None
    assert failed.progress == 0.5 and failed.progress_message == "about to fail"
    assert failed.finished_at is not None


def test_a_job_delivered_twice_runs_once(job_worker, world):
    outcomes = []

    def record_outcome(sender=None, args=None, retval=None, **kwargs):
        if sender is jobs_support.sleep_in_steps and args == [job.pk]:
            outcomes.append(retval)

    task_postrun.connect(record_outcome, weak=False)
    try:
        job = start_job(
            kind="test.sleep", organization=world.org, creator=world.user("admin"), params={"steps": 2, "pause": 0.05}
        )
        # The same job id sent twice more, as a redelivered or duplicated message would be.
        jobs_support.sleep_in_steps.apply_async(args=[job.pk], queue="default")
        jobs_support.sleep_in_steps.apply_async(args=[job.pk], queue="default")
        wait_for(lambda: len(outcomes) == 3, what="the worker to take all three messages")
    finally:
        task_postrun.disconnect(record_outcome)

    assert sorted(outcomes) == ["skipped", "skipped", "succeeded"]
    assert jobs_support.EXECUTED.count(job.pk) == 1
    done = Job.objects.get(pk=job.pk)
    assert (done.status, done.attempts) == (JobStatus.SUCCEEDED, 1)
