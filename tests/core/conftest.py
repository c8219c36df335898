"""Real Celery workers for the job tests: one in a thread of the test process, or subprocesses (kill -9)."""

from __future__ import annotations

import os

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from tests import jobs_support


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="module")
def _thread_worker(django_db_setup):
    """One solo-pool worker in a thread per test module, consuming the ``default`` queue.

    Module-scoped so that it is gone before other modules' tests run (it would take their messages).

    It touches the database only while it runs a task, that is inside a ``transaction=True`` test; Celery's
    Django fixup closes its connection after every task, so the test database can be dropped at the end.
    """
    from gpux_portal.celery import app

    if not settings.REDIS_URL:
        pytest.skip("the worker tests need Redis as the broker (REDIS_URL), as in CI")
    os.environ.setdefault("CELERY_SKIP_CHECKS", "1")
    jobs_support.purge_broker()
    with start_worker(
        app,
        pool="solo",
        perform_ping_check=False,
        queues=["default", "checks"],
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker
    jobs_support.purge_broker()


@pytest.fixture
def job_worker(_thread_worker, transactional_db, media_root):
    """The in-thread worker, for a test whose data it must see (committed: ``transaction=True``)."""
    jobs_support.EXECUTED.clear()
    return _thread_worker


@pytest.fixture
def worker_processes(transactional_db, media_root, tmp_path):
    """Start worker subprocesses on the ``sync`` queue with ``worker_processes()``; all are stopped by pid.

    They use the ``sync`` queue so that the in-thread worker (``default``) never takes their jobs.
    """
    if not settings.REDIS_URL:
        pytest.skip("the worker tests need Redis as the broker (REDIS_URL), as in CI")
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need a database server that two processes can share (PostgreSQL)")
    started: list[jobs_support.WorkerProcess] = []

    def start(**kwargs) -> jobs_support.WorkerProcess:
        kwargs.setdefault("queues", ("sync",))
        worker = jobs_support.WorkerProcess(tmp_path, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.terminate()
    for worker in started:
        worker.wait_stopped()
    jobs_support.purge_broker()
