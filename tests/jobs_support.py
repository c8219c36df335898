"""Test-only job kinds and real Celery workers for the job tests (tests/core/test_jobs_*.py).

The kinds below exist only in the test suite: the test process imports this module, and a worker subprocess
imports it through ``CELERY_EXTRA_TASK_MODULES=tests.jobs_support`` (settings.CELERY_IMPORTS). None of them
may be started through the API (``user_startable`` is False).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection

from apps.core.job_services import ProgressReporter
from apps.core.jobs import Job
from apps.core.tasks import JobTask, register_job_task

BASE_DIR = Path(__file__).resolve().parent.parent

# Job ids executed in *this* process (the in-thread worker shares it): how many times a job's work ran.
EXECUTED: list[int] = []


class SleepInSteps(JobTask):
    """Sleeps ``steps`` times ``pause`` seconds, reporting progress (and its pid) after each step.

    With ``log`` (a file path) it first appends ``<job id> <attempt> <pid>`` to it: how many times the work of each
    job started, across worker processes."""

    name = "tests.sleep_in_steps"
    kind = "test.sleep"
    progress_interval = 0.0
    job_time_limit = 30

    def execute(self, job: Job, progress: ProgressReporter) -> dict:
        steps, pause = int(job.params.get("steps", 5)), float(job.params.get("pause", 0.05))
        EXECUTED.append(job.pk)
        if job.params.get("log"):
            with open(job.params["log"], "a") as log:
                log.write(f"{job.pk} {job.attempts} {os.getpid()}\n")
        for step in range(1, steps + 1):
            time.sleep(pause)
            progress(step / steps, f"step {step} of {steps} in pid {os.getpid()}")
        return {"steps": steps, "pid": os.getpid(), "attempt": job.attempts}


def explode_with_a_recognizable_frame(job: Job) -> None:
    raise RuntimeError(f"boom in job {job.uuid}")


class Crash(JobTask):
    """Fails half-way: the traceback must name ``explode_with_a_recognizable_frame``."""

    name = "tests.crash"
    kind = "test.crash"
    progress_interval = 0.0

    def execute(self, job: Job, progress: ProgressReporter) -> dict:
        EXECUTED.append(job.pk)
        progress(0.5, "about to fail")
        explode_with_a_recognizable_frame(job)
        return {}


class BackendPid(JobTask):
    """Answers the PostgreSQL backend (server process) that served its database connection, and its own pid."""

    name = "tests.backend_pid"
    kind = "test.backend_pid"
    progress_interval = 0.0

    def execute(self, job: Job, progress: ProgressReporter) -> dict:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (backend,) = cursor.fetchone()
        return {"backend_pid": backend, "pid": os.getpid()}


class IgnoreSoftTimeLimit(JobTask):
    """Keeps beating its heartbeat for ``seconds`` and swallows the soft time limit (as code stuck in a C extension
    would never see it): only the hard limit stops it."""

    name = "tests.ignore_soft_time_limit"
    kind = "test.ignore_soft_time_limit"
    progress_interval = 0.0

    def execute(self, job: Job, progress: ProgressReporter) -> dict:
        deadline = time.monotonic() + float(job.params.get("seconds", 60))
        while time.monotonic() < deadline:
            try:
                time.sleep(0.05)
                progress(0.5, f"still going in pid {os.getpid()}")
            except SoftTimeLimitExceeded:
                continue
        return {"pid": os.getpid()}


sleep_in_steps = register_job_task(SleepInSteps)
ignore_soft_time_limit = register_job_task(IgnoreSoftTimeLimit)
crash = register_job_task(Crash)
backend_pid = register_job_task(BackendPid)


# --- helpers --------------------------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], object], *, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout} s waiting for {what or predicate}")


def job_in(job: Job, *statuses: str) -> Callable[[], Job | None]:
    def check() -> Job | None:
        fresh = Job.objects.get(pk=job.pk)
        return fresh if fresh.status in statuses else None

    return check


def runs_logged(path: Path) -> dict[int, int]:
    """How many times each job's work started, from a ``test.sleep`` ``log`` file."""
    counts: dict[int, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            job_id = int(line.split()[0])
            counts[job_id] = counts.get(job_id, 0) + 1
    return counts


def purge_broker() -> None:
    """Empty the job queues and drop unacknowledged messages left by killed workers of earlier runs."""
    from gpux_portal.celery import app

    app.control.purge()
    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        client.delete("unacked", "unacked_index", "unacked_mutex")


def database_url_of_this_test_run() -> str:
    """A DATABASE_URL naming the database this test process uses (pytest-django's ``test_...`` database)."""
    config = connection.settings_dict
    user = quote(config.get("USER") or "", safe="")
    password = quote(config.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = config.get("HOST") or "127.0.0.1"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(config['NAME'], safe='')}"


def serve_portal(
    var_dir: Path, *, workers: int = 1, threads: int = 4, log: Path | None = None, env: dict | None = None
) -> tuple[subprocess.Popen, str]:
    """The portal under gunicorn with its own configuration (gpux_portal/gunicorn_conf.py), ``workers`` processes of
    ``threads`` threads, on this test run's database, Redis and broker, on a free port of 127.0.0.1: the process and
    its base URL. ``log``: a file for its output (else none is kept); ``env``: more environment. The caller stops it
    (``stop_portal``)."""
    from tests.metrics_support import free_port

    port = free_port()
    extra = env or {}
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_this_test_run(),
        "DATABASE_TEST_NAME": "",
        "REDIS_URL": settings.REDIS_URL or "",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DJANGO_ENV": "test",
        "GPUX_VAR_DIR": str(var_dir),
        "GPUX_WEB_WORKERS": str(workers),
        "GPUX_WEB_THREADS": str(threads),
        "PYTHONPATH": str(BASE_DIR),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    command = [
        sys.executable, "-m", "gunicorn", "--config", "python:gpux_portal.gunicorn_conf",
        "gpux_portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
    ]  # fmt: skip
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    server = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)
    if log is not None:
        output.close()  # the server holds its own copy
    return server, f"http://127.0.0.1:{port}"


def wait_for_portal(base: str, *, timeout: float = 90) -> None:
    """Wait until the portal at ``base`` (``serve_portal``'s URL) answers ``/healthz``."""
    import urllib.request

    def up() -> bool:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
            return True
        except OSError:
            return False

    wait_for(up, timeout=timeout, interval=0.2, what="gunicorn to answer")


def stop_portal(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


class WorkerProcess:
    """``celery -A gpux_portal worker -Q sync -P solo --concurrency 1`` on the test database, stopped by pid.

    ``pool="prefork"`` gives a worker that enforces time limits (the solo pool ignores them).
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        queues: tuple[str, ...] = ("sync",),
        pool: str = "solo",
        task_modules: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        prefetch: int = 1,
        concurrency: int = 1,
    ) -> None:
        self.name = f"jobs-test-{uuid.uuid4().hex[:8]}"
        self.log_path = log_dir / f"{self.name}.log"
        self.queues = queues
        self.pool = pool
        self.task_modules = ("tests.jobs_support", *task_modules)
        self.extra_env = env or {}
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_this_test_run(),
            "DATABASE_TEST_NAME": "",
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DJANGO_ENV": "test",
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CELERY_EXTRA_TASK_MODULES": ",".join(self.task_modules),
            "CELERY_SKIP_CHECKS": "1",
            "PYTHONPATH": str(BASE_DIR),
            **self.extra_env,
        }
        command = [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "gpux_portal",
            "worker",
            "-Q",
            ",".join(self.queues),
            "-P",
            self.pool,
            "--concurrency",
            str(self.concurrency),
            "--prefetch-multiplier",
            str(self.prefetch),
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{self.name}@%h",
            "--loglevel",
            "INFO",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 30.0) -> WorkerProcess:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"The worker exited with {self.process.returncode}:\n{self.log()}")
            return " ready." in self.log()

        wait_for(ready, timeout=timeout, interval=0.1, what=f"worker {self.name} to be ready")
        return self

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, no last words (what an OOM kill or a lost node does)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGQUIT: the worker's cold shutdown (the test is over; nothing in hand matters); then ``wait_stopped``."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGQUIT)

    def wait_stopped(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


# --- Redis going away ----------------------------------------------------------------------------------------------


def a_closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayRedis:
    """A ``redis-server`` of the test's own on a free loopback port, without persistence, stopped by its pid: one to
    kill while the portal uses it (never the shared Redis other tests use)."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed (apt-get install redis-server)")
        self.port = a_closed_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder), "--logfile", str(folder / f"redis-{self.port}.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._answers, timeout=10, what=f"redis-server on port {self.port}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def redis_at(url: str, settings: Any) -> Iterator[None]:
    """Point this process's cache, broker and result channel at ``url`` (a closed port: Redis unreachable), as a web
    process configured with it would be; everything is put back afterwards. ``settings``: pytest-django's fixture."""
    from apps.inference import completion
    from gpux_portal.celery import app

    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = url
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    saved_env = os.environ.get("CELERY_BROKER_URL")
    saved_conf = app.conf.broker_url

    def use(broker: str | None, conf: str) -> None:
        if broker is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = broker
        app.conf.broker_url = conf
        app._pool = None
        app.amqp._producer_pool = None
        completion._client.cache_clear()

    old_caches, old_redis = settings.CACHES, settings.REDIS_URL
    settings.CACHES, settings.REDIS_URL = caches, url
    use(url, url)
    try:
        yield
    finally:
        settings.CACHES, settings.REDIS_URL = old_caches, old_redis
        use(saved_env, saved_conf)
