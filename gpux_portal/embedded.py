"""``make run``: the whole portal on one machine with nothing but Python.

``python -m gpux_portal.embedded`` (with DATABASE_URL and REDIS_URL unset, as the Makefile does):

1. migrates the embedded SQLite database under ``var/`` (skipped when nothing is pending);
2. collects static files when the sources changed since the last run;
3. seeds the demo organization once (``manage.py seed_demo``);
4. starts gunicorn (``gpux_portal/gunicorn_conf.py``: threaded workers, so a prediction that waits holds a thread,
   not a process), two Celery workers (prefork, one process each: time and memory limits hold as in production)
   and Celery beat, all on the embedded default (SQLite in WAL mode, the file-system broker under ``var/broker``).
   The *interactive* worker takes ``inference.cpu`` only (predictions, try-it, pipelines, batch jobs); the
   *background* worker takes ``default``, ``sync`` and ``checks`` (exports, registry syncs, validation,
   performance cards), so a model being checked never holds up a prediction;
5. prints where the portal is and how to sign in, and supervises: a child that exits is started again after a
   pause that doubles with each exit in a row (1 s up to 60 s, logged); one that keeps failing within
   ``STABLE_SECONDS`` of its start ``MAX_RESTARTS`` times stops everything (exit status 1). A child that exits
   while the portal is still starting stops everything at once (a port in use, a broken setting).

Stopping: Ctrl-C, SIGTERM or SIGHUP, to the launcher or to its whole process group, any number of them: the first
asks every child to stop (SIGTERM), a second one (or ``STOP_TIMEOUT`` seconds) kills what is left, each child's
own process group included (gunicorn's workers, Celery's pool processes). The signal handler only takes note;
the stopping runs in the main loop, so no signal can interrupt it half-way. The children also get SIGTERM if the
launcher itself is killed (Linux: ``PR_SET_PDEATHSIG``).

Environment: ``GPUX_HOST`` (127.0.0.1), ``GPUX_PORT`` (8000), ``GPUX_WEB_WORKERS`` (2), ``GPUX_WEB_THREADS`` (8),
``GPUX_VAR_DIR`` (``./var``), ``GPUX_WORKER_METRICS_PORT_BASE`` (9101: the interactive worker's metrics port, the
background worker's is the next; 0: none). Metric files live under ``var/metrics/``; the web's metrics are at
``/metrics`` (loopback only, outside production). Run again, it starts at once: migrations, static files and the
seed are each done only once.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STOP_TIMEOUT = 15  # seconds a child gets to stop after SIGTERM before it is killed
READY_TIMEOUT = 120  # seconds gunicorn gets to answer /healthz
RESTART_DELAYS = (1, 2, 4, 8, 16, 32, 60)  # seconds before a child that exited is started again, by exits in a row
STABLE_SECONDS = 60  # a child that ran this long before exiting starts a new count of exits in a row
MAX_RESTARTS = 5  # exits in a row, each soon after its start, before the launcher gives up
ADMIN_ACCOUNT = "owner@demo.local"  # seed_demo makes the demo's owner staff and superuser


def log(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def _prepare_environment() -> tuple[str, int]:
    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(name):
            log(f"note: {name} is set; `make run` is the embedded mode and ignores it.")
            os.environ.pop(name)
    if os.environ.get("DJANGO_ENV") == "production":
        sys.exit("`make run` is the embedded development mode; it does not run with DJANGO_ENV=production.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpux_portal.settings")
    host = os.environ.get("GPUX_HOST", "127.0.0.1")
    port = int(os.environ.get("GPUX_PORT", "8000"))
    os.environ.setdefault("PORTAL_URL", f"http://{host}:{port}")
    return host, port


def _migrate() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        log("database is up to date.")
        return
    log(f"applying {len(plan)} migrations to {connection.settings_dict['NAME']} ...")
    call_command("migrate", interactive=False, verbosity=0)


def _static_fingerprint() -> str:
    from django.contrib.staticfiles.finders import get_finders

    digest = hashlib.sha256()
    for finder in get_finders():
        for path, storage in finder.list(["CVS", ".*", "*~"]):
            full = storage.path(path)
            stat = os.stat(full)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _collect_static(var_dir: Path) -> None:
    from django.core.management import call_command

    stamp = var_dir / ".static-fingerprint"
    fingerprint = _static_fingerprint()
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    log("collecting static files ...")
    call_command("collectstatic", interactive=False, verbosity=0)
    stamp.write_text(fingerprint)


def _seed(var_dir: Path) -> dict[str, str]:
    from django.core.management import call_command

    from gpux_portal.management.commands.seed_demo import read_credentials

    stamp = var_dir / ".seeded"
    if not stamp.exists():
        log("seeding the demo organization ...")
        call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115 -- closed at exit
        stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return read_credentials()


def _children(host: str, port: int, var_dir: Path) -> dict[str, list[str]]:
    python = sys.executable
    # Each worker serves its metrics on a port of its own (docs/operator/monitoring.md); 0 turns them off.
    metrics_base = int(os.environ.get("GPUX_WORKER_METRICS_PORT_BASE", "9101"))
    interactive_metrics, background_metrics = (str(metrics_base), str(metrics_base + 1)) if metrics_base else ("0", "0")
    return {
        "web": [
            python, "-m", "gunicorn", "--config", "python:gpux_portal.gunicorn_conf", "gpux_portal.wsgi:application",
            "--bind", f"{host}:{port}", "--log-level", "warning",
        ],
        "interactive worker": [
            python, "-m", "celery", "-A", "gpux_portal", "worker", "-Q", "inference.cpu",
            "--pool", "prefork", "--concurrency", "1", "--loglevel", "WARNING", "--hostname", f"interactive@{host}",
            "--metrics-port", interactive_metrics,
        ],
        "background worker": [
            python, "-m", "celery", "-A", "gpux_portal", "worker", "-Q", "default,sync,checks",
            "--pool", "prefork", "--concurrency", "1", "--loglevel", "WARNING", "--hostname", f"background@{host}",
            "--metrics-port", background_metrics,
        ],
        "beat": [
            python, "-m", "celery", "-A", "gpux_portal", "beat", "--loglevel", "WARNING",
            "--schedule", str(var_dir / "celerybeat-schedule"),
        ],
    }  # fmt: skip


# --- signals: the handler only counts them; the main loop acts ------------------------------------------------

_signals: list[int] = []


def _note_signal(signum: int, frame: Any) -> None:
    _signals.append(signum)


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
PR_SET_PDEATHSIG = 1


def _die_with_the_launcher() -> None:
    """In the child, before exec: SIGTERM when the launcher dies, however it dies (even SIGKILL)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))


# --- the children ---------------------------------------------------------------------------------------------


@dataclass
class Child:
    """One supervised process: its command, the running process (None while it waits to be started again)."""

    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # exits in a row, each within STABLE_SECONDS of its start
    restart_at: float | None = None
    starts: int = 0

    def start(self) -> None:
        # Its own session: a Ctrl-C in the terminal, or a signal to the launcher's group, reaches the launcher only,
        # which stops the children in order. Its own group: the whole group can be killed at the end.
        self.process = subprocess.Popen(  # noqa: S603 -- our own command
            self.command, start_new_session=True, preexec_fn=_die_with_the_launcher
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        self.starts += 1

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the child's process group (its own workers and pool processes)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _wait_until_ready(url: str, children: list[Child]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if _signals:
            return False
        for child in children:
            if child.process is not None and child.process.poll() is not None:
                log(f"{child.name} exited with status {child.process.returncode} while starting.")
                return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 -- our own loopback URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    log(f"the web server did not answer {url} within {READY_TIMEOUT} s.")
    return False


def _supervise(children: list[Child]) -> int | None:
    """Watch the children until a signal arrives (None) or one keeps failing (1); restart those that exit."""
    while not _signals:
        now = time.monotonic()
        for child in children:
            if child.process is None:
                if child.restart_at is not None and now >= child.restart_at:
                    child.start()
                    log(f"{child.name} started again (pid {child.process.pid}).")
                continue
            status = child.process.poll()
            if status is None:
                continue
            child.kill_group()  # a pool process or gunicorn worker its main process left behind
            uptime = now - child.started_at
            child.failures = child.failures + 1 if uptime < STABLE_SECONDS else 1
            if child.failures > MAX_RESTARTS:
                log(
                    f"{child.name} (pid {child.process.pid}) exited with status {status}, {child.failures} times in "
                    f"a row within {STABLE_SECONDS} s of starting; stopping everything."
                )
                return 1
            delay = RESTART_DELAYS[min(child.failures, len(RESTART_DELAYS)) - 1]
            log(
                f"{child.name} (pid {child.process.pid}) exited with status {status} after {uptime:.0f} s; "
                f"starting it again in {delay} s."
            )
            child.process, child.restart_at = None, now + delay
        time.sleep(0.2)
    return None


def _stop(children: list[Child]) -> None:
    """Stop every child: SIGTERM first; a further signal, or ``STOP_TIMEOUT`` seconds, and the rest are killed.
    Safe to call more than once; signals arriving meanwhile are only counted."""
    signals_seen = len(_signals)
    for child in children:
        if child.running():
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(child.running() for child in children):
        if len(_signals) > signals_seen:
            log("another signal: killing what is left.")
            break
        if time.monotonic() >= deadline:
            names = ", ".join(child.name for child in children if child.running())
            log(f"{names} did not stop in {STOP_TIMEOUT} s; killing.")
            break
        time.sleep(0.1)
    for child in children:
        child.kill_group()
        if child.process is not None:
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            child.process.wait()


def main() -> int:
    host, port = _prepare_environment()

    import django

    django.setup()
    from django.conf import settings

    var_dir = Path(settings.VAR_DIR)
    for folder in (var_dir, var_dir / "broker", var_dir / "broker" / "processed", Path(settings.MEDIA_ROOT)):
        folder.mkdir(parents=True, exist_ok=True)

    _migrate()
    _collect_static(var_dir)
    credentials = _seed(var_dir)
    # The children open the database themselves; this process keeps no connection while it waits.
    from django.db import connections

    connections.close_all()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _note_signal)
    children = [Child(name, command) for name, command in _children(host, port, var_dir).items()]
    status: int | None = 1
    try:
        for child in children:
            if _signals:
                break
            child.start()
        url = f"http://{host}:{port}/"
        if not _signals and _wait_until_ready(f"{url}healthz", children):
            accounts = " or ".join(f"{email} / {password}" for email, password in credentials.items())
            sign_in = f"sign in as {accounts}" if accounts else "sign in with your account"
            print(f"\nGPUX Portal is up: {url} — {sign_in}", flush=True)
            if ADMIN_ACCOUNT in credentials:
                print(f"{ADMIN_ACCOUNT} is also the operator: the admin site is {url}admin/", flush=True)
            pids = ", ".join(f"{child.name} {child.process.pid}" for child in children)
            print(f"(pids: {pids}; e-mails are printed here; Ctrl-C stops everything)\n", flush=True)
            status = _supervise(children)
        if _signals:
            status = 0
    finally:
        log("stopping ...")
        _stop(children)
        log("stopped.")
    return status if status is not None else 0


if __name__ == "__main__":
    sys.exit(main())
