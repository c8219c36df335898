"""The reaper: stale running jobs are re-queued up to their maximum attempts, then failed; live ones are left."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.core.job_services import reap_stale_jobs, reaper_grace
from apps.core.jobs import Job, JobStatus

pytestmark = pytest.mark.django_db


def running_job(world, *, attempts: int, max_attempts: int = 3, silent_for: int, time_limit: int = 60) -> Job:
    """A job a worker claimed and last reported on ``silent_for`` seconds ago (no message is sent)."""
    beat = timezone.now() - timedelta(seconds=silent_for)
    return Job.objects.create(
        kind="test.sleep",
        organization=world.org,
        creator=world.user("admin"),
        status=JobStatus.RUNNING,
        attempts=attempts,
        max_attempts=max_attempts,
        time_limit=time_limit,
        started_at=beat,
        heartbeat_at=beat,
    )


def test_the_reaper_fails_a_job_whose_worker_was_lost_on_its_last_attempt(world):
    job = running_job(world, attempts=3, max_attempts=3, silent_for=60 + reaper_grace() + 5)

    report = reap_stale_jobs()

    assert [failed.pk for failed in report.failed] == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("Worker lost 3 times")
    assert "giving up after 3 attempts" in job.error
    assert job.finished_at is not None
    assert job.result is None


def test_the_reaper_requeues_a_stale_job_with_attempts_left(world, django_capture_on_commit_callbacks):
    job = running_job(world, attempts=1, silent_for=60 + reaper_grace() + 5)

    with django_capture_on_commit_callbacks() as callbacks:
        report = reap_stale_jobs()

    assert [requeued.pk for requeued in report.requeued] == [job.pk]
    assert len(callbacks) == 1  # the message is sent again once the re-queue commits
    job.refresh_from_db()
    assert (job.status, job.attempts, job.heartbeat_at) == (JobStatus.QUEUED, 1, None)
    assert "attempt 1 of 3 was lost" in job.progress_message


def test_the_reaper_leaves_a_job_alone_within_its_time_limit_and_grace(world):
    fresh = running_job(world, attempts=1, silent_for=5)
    slow_but_within_limit = running_job(world, attempts=1, silent_for=60 + reaper_grace() - 5)

    report = reap_stale_jobs()

    assert report.requeued == [] and report.failed == []
    assert set(Job.objects.filter(status=JobStatus.RUNNING).values_list("pk", flat=True)) == {
        fresh.pk,
        slow_but_within_limit.pk,
    }


def test_the_reaper_ignores_jobs_that_are_not_running(world):
    old = timezone.now() - timedelta(days=1)
    for status in (JobStatus.QUEUED, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        Job.objects.create(
            kind="test.sleep", organization=world.org, status=status, attempts=1, heartbeat_at=old, started_at=old
        )

    report = reap_stale_jobs()

    assert report.requeued == [] and report.failed == []


def test_reap_jobs_command_reports_what_it_did(world):
    job = running_job(world, attempts=2, max_attempts=2, silent_for=60 + reaper_grace() + 5)
    out = StringIO()

    call_command("reap_jobs", stdout=out)

    assert f"failed {job.uuid}" in out.getvalue()
    assert "0 re-queued, 1 failed, 0 sent again" in out.getvalue()


def test_beat_runs_the_reaper_every_minute_by_default(settings):
    from gpux_portal.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["reap-stale-jobs"]
    assert entry["schedule"] == 60
    assert app.tasks[entry["task"]].name == "core.reap_stale_jobs"
