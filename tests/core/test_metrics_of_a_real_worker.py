"""A real Celery worker (prefork, two pool processes) with a metrics port: the jobs its pool processes ran are in
the sum its main process serves (their multiprocess files included), its heartbeat makes it "up" for its queue on
the web's /metrics, the queue's depth and the age of its oldest message are read from the broker, and its port
answers only the operator's Prometheus. No GPU here: the GPU families are absent, and nothing fails for it."""

from __future__ import annotations

import os
import time
import urllib.error
from pathlib import Path

import pytest
from django.test import Client

from apps.core import metrics
from apps.core.job_services import start_job
from apps.core.jobs import JobStatus
from tests import jobs_support
from tests.metrics_support import TOKEN, free_port, scrape_url, scrape_web

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_a_workers_port_serves_what_its_pool_processes_recorded(worker_processes, world, settings, tmp_path):
    settings.METRICS_BEARER_TOKEN = TOKEN
    jobs_support.purge_broker()
    waiting = start_job(kind="test.sleep", organization=world.org, params={"steps": 1, "pause": 0.01}, queue="sync")
    time.sleep(0.6)
    before = scrape_web(Client())
    assert before.value("gpux_queue_messages", queue="sync") == 1
    assert before.value("gpux_queue_oldest_message_age_seconds", queue="sync") >= 0.5

    port, metrics_root = free_port(), tmp_path / "metrics"
    worker = worker_processes(
        pool="prefork",
        concurrency=2,
        env={
            "GPUX_WORKER_METRICS_PORT": str(port),
            "GPUX_METRICS_DIR": str(metrics_root),
            "METRICS_BEARER_TOKEN": TOKEN,
            "METRICS_ALLOWED_NETWORKS": "192.0.2.0/24",
            "WORKER_HEARTBEAT_SECONDS": "1",
        },
    )
    worker.wait_ready(timeout=60)
    jobs_support.wait_for(jobs_support.job_in(waiting, JobStatus.SUCCEEDED), timeout=60, what="the waiting job")
    crash = start_job(kind="test.crash", organization=world.org, params={}, queue="sync")
    jobs_support.wait_for(jobs_support.job_in(crash, JobStatus.FAILED), timeout=60, what="the crashing job")

    url = f"http://127.0.0.1:{port}/metrics"
    scraped = jobs_support.wait_for(
        lambda: (s := scrape_url(url)).value("gpux_job_outcomes_total", kind="test.crash", outcome="failed") and s,
        timeout=20,
        what="the failed job in the worker's metrics",
    )
    assert scraped.value("gpux_job_outcomes_total", kind="test.sleep", outcome="succeeded") == 1
    assert scraped.value("gpux_job_outcomes_total", kind="test.crash", outcome="failed") == 1
    assert scraped.value("gpux_job_duration_seconds_count", kind="test.sleep", outcome="succeeded") == 1
    assert scraped.value("gpux_job_queue_wait_seconds_count", kind="test.sleep", queue="sync") == 1
    assert scraped.value("gpux_job_queue_wait_seconds_sum", kind="test.sleep", queue="sync") >= 0.5
    assert not any(name.startswith("gpux_gpu_") for name in scraped.names()), "GPU families without a GPU"

    # The pool processes wrote them: their files are in the worker's folder, named after pids other than the main one.
    files = list((metrics_root / f"worker-{port}").glob("*.db"))
    writers = {int(Path(name).stem.rsplit("_", 1)[-1]) for name in files}
    assert writers and worker.pid not in writers, (writers, worker.pid)

    # Its heartbeat: up for its queue (other tests' workers may still be within their heartbeat's lifetime).
    record = jobs_support.wait_for(
        lambda: next((r for r in metrics.live_workers() if r["name"].startswith(worker.name)), None),
        timeout=20,
        what="the worker's heartbeat",
    )
    assert record["queues"] == ["sync"] and record["metrics_port"] == port
    web = scrape_web(Client())
    assert web.value("gpux_workers_up", queue="sync") >= 1
    assert web.value("gpux_queue_messages", queue="sync") == 0
    assert web.value("gpux_queue_oldest_message_age_seconds", queue="sync") == 0

    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape_url(url, token=None)
    assert refused.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as wrong:
        scrape_url(url, token="wrong")
    assert wrong.value.code == 403

    worker.terminate()
    worker.wait_stopped()
    assert os.path.isdir(metrics_root / f"worker-{port}")
