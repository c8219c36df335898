"""Real Celery workers for the job tests: one in a thread of the test process, or subprocesses (kill -9)."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection

from tests import jobs_support


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def job_worker(transactional_db, media_root, monkeypatch):
    """A solo-pool worker consuming the ``default`` queue in a thread, against the (committed) test database."""
    from gpux_portal.celery import app

    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")
    jobs_support.purge_broker()
    jobs_support.EXECUTED.clear()
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=["default"], loglevel="WARNING", shutdown_timeout=30
    ) as worker:
        yield worker


@pytest.fixture
def worker_processes(transactional_db, media_root, tmp_path):
    """Start worker subprocesses with ``worker_processes()``; every one still alive is stopped by pid at the end."""
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need a database server that two processes can share (PostgreSQL)")
    jobs_support.purge_broker()
    started: list[jobs_support.WorkerProcess] = []

    def start(**kwargs) -> jobs_support.WorkerProcess:
        worker = jobs_support.WorkerProcess(tmp_path, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    jobs_support.purge_broker()
