"""Test-run plumbing loaded before Django's settings (``-p tests.parallel`` in pyproject's pytest options).

* **Parallel runs** (pytest-xdist, ``make test`` runs ``-n``): every xdist worker gets a Redis server of its own
  (a throwaway ``redis-server`` on a free loopback port, stopped by its pid at the end) and a var/ folder of its
  own, set in the environment before the settings module reads it. Worker tests start real Celery workers that
  consume whatever is queued in their broker: two test processes sharing one Redis would run each other's jobs.
  PostgreSQL needs nothing here: pytest-django gives each xdist worker its own test database (``test_gpux_gw0``).
* **CI** (``CI=true``, as ``.ci/run`` sets it): a skipped test is a failure. The tests skip when a service or
  peer is missing so that a partial machine can run what it can, but in CI every service is installed and
  started, so a skip there means something is broken and would hide it (issue #13, item 21). A test that may
  legitimately skip in CI says so with ``@pytest.mark.may_skip_in_ci(reason=...)``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

_private_redis: subprocess.Popen | None = None
_private_var: Path | None = None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_private_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise pytest.UsageError("parallel test runs need redis-server on PATH (apt-get install redis-server)")
    for _ in range(5):
        port = _free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder), "--databases", "4", "--logfile", str(folder / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return process, f"redis://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.05)
        process.kill()  # the port was taken between the choice and the bind: try another
        process.wait()
    raise pytest.UsageError("could not start a private redis-server for this xdist worker")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Before pytest-django loads the settings: an xdist worker's own Redis and var/ folder."""
    global _private_redis, _private_var
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not os.environ.get("REDIS_URL"):
        return
    _private_var = Path(tempfile.mkdtemp(prefix=f"gpux-test-{worker}-"))
    _private_redis, url = _start_private_redis(_private_var)
    os.environ["REDIS_URL"] = f"{url}/0"
    os.environ["CELERY_BROKER_URL"] = f"{url}/1"
    os.environ["GPUX_VAR_DIR"] = str(_private_var / "var")


def pytest_unconfigure(config):
    global _private_redis
    if _private_redis is not None and _private_redis.poll() is None:
        _private_redis.send_signal(signal.SIGTERM)
        try:
            _private_redis.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _private_redis.kill()
            _private_redis.wait()
    _private_redis = None
    if _private_var is not None:
        shutil.rmtree(_private_var, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "may_skip_in_ci(reason): this test may skip in CI too (say why); every other skip fails there"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    if item.get_closest_marker("may_skip_in_ci"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI ({reason}): CI installs and starts every service and peer the tests use, so a skip there "
        "hides a broken setup. Fix the setup, or mark the test may_skip_in_ci(reason=...) if it truly may skip."
    )
