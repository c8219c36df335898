"""A job whose message cannot be sent (the broker is down) is failed with a clear error, not left queued."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from django.db import connection

from apps.core.jobs import Job, JobStatus
from tests.jobs_support import BASE_DIR, database_url_of_this_test_run

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_job_that_cannot_be_queued_is_failed_saying_so(world):
    if connection.vendor != "postgresql":
        pytest.skip("needs a database server that two processes can share (PostgreSQL)")
    script = (
        "from apps.core.job_services import start_job\n"
        "from apps.organizations.models import Organization\n"
        "job = start_job(kind='audit.export', organization=Organization.objects.get(slug='acme'))\n"
        "print(job.uuid)\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_this_test_run(),
        "REDIS_URL": f"redis://127.0.0.1:{a_closed_port()}/0",
        "CELERY_BROKER_URL": "",
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
    job = Job.objects.get(uuid=done.stdout.strip().splitlines()[-1])
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("The job could not be queued (broker unreachable")
    assert job.finished_at is not None and job.attempts == 0
