"""gunicorn with two worker processes (gpux_portal/gunicorn_conf.py): each writes its own metric files into the web's
folder, wiped when the master starts; /metrics answers their sum, whichever process serves the scrape, and the
counts of a worker that exits stay in the sum (child_exit marks it dead)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests import jobs_support
from tests.metrics_support import Exposition, free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
BASE_DIR = Path(__file__).resolve().parents[2]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _healthz_count(url: str) -> float:
    scraped = Exposition(_get(f"{url}/metrics").decode())
    return scraped.value("django_http_responses_total_by_status_view_method_total", view="healthz", status="200")


def test_two_gunicorn_workers_are_counted_together(tmp_path):
    var = tmp_path / "var"
    folder = var / "metrics" / "web"
    folder.mkdir(parents=True)
    (folder / "counter_999999.db").write_bytes(b"left over from an earlier run")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": jobs_support.database_url_of_this_test_run(),
        "DATABASE_TEST_NAME": "",
        "REDIS_URL": settings.REDIS_URL or "",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DJANGO_ENV": "test",
        "GPUX_VAR_DIR": str(var),
        "GPUX_WEB_WORKERS": "2",
        "GPUX_WEB_THREADS": "2",
        "PYTHONPATH": str(BASE_DIR),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable, "-m", "gunicorn", "--config", "python:gpux_portal.gunicorn_conf",
        "gpux_portal.wsgi:application", "--bind", f"127.0.0.1:{port}", "--keep-alive", "0",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            # Probed on /metrics, not /healthz: on a loaded machine a probe that timed out on the client's side is
            # still answered (and counted) by the server later, which would land inside the count below.
            try:
                return _get(f"{url}/metrics") is not None
            except OSError:
                return False

        jobs_support.wait_for(up, timeout=120, interval=0.2, what="gunicorn to answer")
        assert not (folder / "counter_999999.db").exists(), "the master did not wipe the folder at start"
        before = _healthz_count(url)
        for _ in range(30):
            _get(f"{url}/healthz")
        assert _healthz_count(url) == before + 30
        writers = {int(path.stem.rsplit("_", 1)[-1]) for path in folder.glob("*.db")}
        assert server.pid not in writers and writers, writers

        # Workers that exit: the master starts others, and what the old ones counted stays in the sum.
        for pid in writers:
            os.kill(pid, signal.SIGTERM)
        time.sleep(1)
        jobs_support.wait_for(up, timeout=120, interval=0.2, what="gunicorn's new workers")
        _get(f"{url}/healthz")  # served by a new worker: the old workers' 30 stay in the sum beside it
        assert _healthz_count(url) >= before + 31
    finally:
        server.terminate()
        server.wait(timeout=30)
