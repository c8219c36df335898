"""Queued jobs whose message is gone: the reaper sends them again once nobody claimed them within a bound, and each
still runs once (the claim is conditional). On real workers and a real Redis: messages lost from the broker, and a
worker's main process killed with messages it had prefetched."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.core.job_services import (
    broker_visibility_timeout,
    hard_limit_margin,
    job_kinds,
    reap_stale_jobs,
    reaper_grace,
    resend_interval,
    send_job,
    start_job,
)
from apps.core.jobs import Job, JobStatus
from tests.jobs_support import job_in, purge_broker, runs_logged, wait_for

BOUND = 300  # JOBS_RESEND_AFTER_SECONDS by default


def sleep_job(world, **params) -> Job:
    return start_job(
        kind="test.sleep", organization=world.org, creator=world.user("admin"), queue="sync", params=params
    )


# --- the rule ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_queued_job_nobody_claimed_is_sent_again_once_its_bound_has_passed(world, django_capture_on_commit_callbacks):
    job = sleep_job(world)
    created = timezone.now()

    with django_capture_on_commit_callbacks() as callbacks:
        assert reap_stale_jobs(now=created + timedelta(seconds=BOUND - 5)).resent == []
    assert callbacks == []

    later = created + timedelta(seconds=BOUND + 5)
    with django_capture_on_commit_callbacks() as callbacks:
        report = reap_stale_jobs(now=later)

    assert [resent.pk for resent in report.resent] == [job.pk]
    assert len(callbacks) == 1  # the message is sent once the re-send commits
    job.refresh_from_db()
    assert (job.status, job.resends, job.attempts) == (JobStatus.QUEUED, 1, 0)
    assert job.resend_at == later + timedelta(seconds=2 * BOUND)
    assert job.progress_message.startswith("Sent to the queue again (re-send 1): no worker had taken it")
    # Not again before its next bound.
    assert reap_stale_jobs(now=later + timedelta(seconds=BOUND)).resent == []


def test_each_resend_waits_twice_as_long_up_to_the_visibility_timeout():
    assert [resend_interval(n).total_seconds() for n in range(4)] == [BOUND, 2 * BOUND, 4 * BOUND, 8 * BOUND]
    assert resend_interval(30).total_seconds() == broker_visibility_timeout()


@pytest.mark.django_db
def test_claimed_finished_and_cancelled_jobs_are_never_sent_again(world):
    long_ago = timezone.now() - timedelta(days=1)
    for status in (JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        Job.objects.create(
            kind="test.sleep", organization=world.org, status=status, resend_at=long_ago, heartbeat_at=timezone.now()
        )

    assert reap_stale_jobs().resent == []


@pytest.mark.django_db
def test_a_job_requeued_after_its_worker_was_lost_gets_a_fresh_bound(world):
    beat = timezone.now() - timedelta(seconds=60 + reaper_grace() + 5)
    job = Job.objects.create(
        kind="test.sleep",
        organization=world.org,
        status=JobStatus.RUNNING,
        attempts=1,
        time_limit=60,
        started_at=beat,
        heartbeat_at=beat,
        resend_at=beat,
    )
    now = timezone.now()

    report = reap_stale_jobs(now=now)

    assert [requeued.pk for requeued in report.requeued] == [job.pk]
    assert report.resent == []  # just sent: not sent a second time in the same pass
    job.refresh_from_db()
    assert job.resend_at == now + timedelta(seconds=BOUND)


def test_the_visibility_timeout_outlasts_the_longest_job_time_limit():
    """Redis hands out an unacknowledged message again after its visibility timeout: it must outlast every attempt
    (late acknowledgement), hard limit and reaper grace included."""
    longest = settings.JOBS_MAX_TIME_LIMIT_SECONDS
    assert broker_visibility_timeout() == longest + hard_limit_margin() + reaper_grace()
    assert longest >= settings.REGISTRY_SYNC_TIME_LIMIT_SECONDS
    assert longest >= settings.INFERENCE_BATCH_TIME_LIMIT_SECONDS
    too_long = {kind: task.job_time_limit for kind, task in job_kinds().items() if task.job_time_limit > longest}
    assert too_long == {}
    from gpux_portal.celery import app

    assert app.conf.broker_transport_options["visibility_timeout"] == broker_visibility_timeout()


# --- on a real worker and Redis --------------------------------------------------------------------------------------


def broker_client():
    from gpux_portal.celery import app

    connection = app.connection_for_write()
    return connection, connection.default_channel.client


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_jobs_whose_messages_were_lost_are_sent_again_and_run_exactly_once(world, worker_processes, tmp_path):
    purge_broker()
    log = tmp_path / "runs.log"
    jobs = [sleep_job(world, steps=2, pause=0.05, log=str(log)) for _ in range(5)]
    send_job(jobs[0])  # and a duplicate message for the first: the claim makes it harmless
    connection, client = broker_client()
    try:
        assert client.llen("sync") == 6
        client.flushdb()  # what a Redis restart without persistence does to the waiting messages
    finally:
        connection.release()

    worker = worker_processes().wait_ready()
    time.sleep(2)
    assert set(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("status", flat=True)) == {JobStatus.QUEUED}

    report = reap_stale_jobs(now=timezone.now() + timedelta(seconds=BOUND + 1))

    assert sorted(job.pk for job in report.resent) == sorted(job.pk for job in jobs)
    for job in jobs:
        done = wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=60, what=f"job {job.pk}")
        assert done.status == JobStatus.SUCCEEDED, done.error
        assert (done.attempts, done.resends) == (1, 1)
        assert done.result["pid"] == worker.pid
    assert runs_logged(log) == {job.pk: 1 for job in jobs}


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_jobs_prefetched_by_a_worker_whose_main_process_was_killed_complete_after_the_bound(
    world, worker_processes, tmp_path
):
    purge_broker()
    log = tmp_path / "runs.log"
    first = worker_processes(pool="prefork", prefetch=64).wait_ready()
    jobs = [sleep_job(world, steps=5, pause=0.1, log=str(log)) for _ in range(8)]
    wait_for(lambda: Job.objects.filter(status=JobStatus.RUNNING).exists(), what="the first worker to start a job")
    wait_for(lambda: first.log().count(" received") >= 8, what="the first worker to prefetch every message")
    pool = children_of(first.pid)
    first.kill()  # SIGKILL of the main process: its prefetched messages stay unacknowledged in Redis
    for pid in pool:  # its pool process goes down with it (as on a lost node)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    second = worker_processes(pool="prefork").wait_ready()
    time.sleep(3)
    # Redis keeps the prefetched messages invisible for its visibility timeout: nothing reaches the second worker.
    waiting = Job.objects.filter(pk__in=[job.pk for job in jobs], status=JobStatus.QUEUED).count()
    assert waiting >= 6, first.log()

    # Past the bound (and the lost attempt's time limit and grace) the reaper re-queues the running one and sends
    # the waiting ones again.
    report = reap_stale_jobs(now=timezone.now() + timedelta(seconds=BOUND + 30 + reaper_grace() + 1))

    assert len(report.resent) == waiting
    assert len(report.requeued) + len(report.resent) + Job.objects.filter(status=JobStatus.SUCCEEDED).count() == 8
    for job in jobs:
        done = wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=90, what=f"job {job.pk}")
        assert done.status == JobStatus.SUCCEEDED, done.error
        assert done.progress == 1.0
    runs = runs_logged(log)
    requeued = {job.pk for job in report.requeued}
    for job in Job.objects.filter(pk__in=[job.pk for job in jobs]):
        # A job whose attempt was lost ran twice and recorded one result, its second attempt's; others ran once.
        expected = 2 if job.pk in requeued else 1
        assert (runs[job.pk], job.attempts) == (expected, expected), (job.pk, runs, job.attempts)
        assert job.result["attempt"] == expected
    assert {job.result["pid"] for job in Job.objects.filter(pk__in=[j.pk for j in jobs if j.pk in requeued])} <= set(
        children_of(second.pid)
    )
