"""A job whose message cannot be sent (the broker is down) stays queued, saying so, and the reaper sends it once the
broker is back; a worker then runs it to its result."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.job_services import reap_stale_jobs
from apps.core.jobs import Job, JobStatus
from tests.jobs_support import BASE_DIR, database_url_of_this_test_run, job_in, purge_broker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_job_that_cannot_be_queued_waits_saying_so_and_runs_once_the_broker_is_back(world, worker_processes):
    if connection.vendor != "postgresql":
        pytest.skip("needs a database server that two processes can share (PostgreSQL)")
    # Another process (a web process) whose Redis does not answer starts the job.
    script = (
        "from apps.core.job_services import start_job\n"
        "from apps.organizations.models import Organization\n"
        "job = start_job(kind='test.sleep', organization=Organization.objects.get(slug='acme'), queue='sync',\n"
        "                params={'steps': 2})\n"
        "print(job.uuid, repr(job.unsent))\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_this_test_run(),
        "REDIS_URL": f"redis://127.0.0.1:{a_closed_port()}/0",
        "CELERY_BROKER_URL": "",
        "CELERY_EXTRA_TASK_MODULES": "tests.jobs_support",
        "DJANGO_ENV": "test",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    uuid, unsent = done.stdout.strip().splitlines()[-1].split(" ", 1)
    assert "Waiting for the job queue" in unsent
    job = Job.objects.get(uuid=uuid)
    assert (job.status, job.attempts, job.finished_at) == (JobStatus.QUEUED, 0, None)
    assert job.progress_message.startswith("Waiting for the job queue: the broker did not answer (")
    assert job.resend_at <= timezone.now()  # due at the reaper's next pass

    # The broker is back (this process's Redis answers): the reaper's next pass sends it, a worker runs it.
    purge_broker()
    worker_processes().wait_ready()
    report = reap_stale_jobs()

    assert [resent.pk for resent in report.resent] == [job.pk]
    finished = wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=60, what="the job to run")
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    assert finished.attempts == 1
