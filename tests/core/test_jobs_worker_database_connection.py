"""A worker process keeps its database connection from task to task (CELERY_DB_REUSE_MAX: Celery's Django fixup
would open a new one for every task, about 8 ms each), and still recovers when the server drops it (Django's
CONN_HEALTH_CHECKS, applied around every task as around every web request)."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.core.job_services import start_job
from apps.core.jobs import JobStatus
from tests.jobs_support import job_in, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def run_backend_pid_job(world) -> dict:
    job = start_job(kind="test.backend_pid", organization=world.org, creator=world.user("admin"), queue="sync")
    done = wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=30, what="the job to finish")
    assert done.status == JobStatus.SUCCEEDED, done.error
    return done.result


def test_a_worker_process_reuses_its_connection_and_reconnects_when_the_server_drops_it(worker_processes, world):
    worker_processes(pool="prefork").wait_ready()

    first, second, third = (run_backend_pid_job(world) for _ in range(3))
    assert first["pid"] == second["pid"] == third["pid"]  # one pool process ran all three
    assert first["backend_pid"] == second["backend_pid"] == third["backend_pid"]

    # The server ends that connection (a restart, a failover, an idle timeout): the next task gets a new one.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first["backend_pid"]])
        assert cursor.fetchone() == (True,)
    after = run_backend_pid_job(world)
    assert after["pid"] == first["pid"]
    assert after["backend_pid"] != first["backend_pid"]
