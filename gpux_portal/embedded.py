"""``make run``: the whole portal on one machine with nothing but Python.

``python -m gpux_portal.embedded`` (with DATABASE_URL and REDIS_URL unset, as the Makefile does):

1. migrates the embedded SQLite database under ``var/`` (skipped when nothing is pending);
2. collects static files when the sources changed since the last run;
3. seeds the demo organization once (``manage.py seed_demo``);
4. starts gunicorn (2 workers), a Celery worker (queues default, sync, inference.cpu; solo pool) and Celery
   beat, all on the embedded default (SQLite in WAL mode, the file-system broker under ``var/broker``);
5. prints where the portal is and how to sign in, and waits. Ctrl-C or SIGTERM stops the children; so does
   any of them dying (then it exits non-zero).

Environment: ``GPUX_HOST`` (127.0.0.1), ``GPUX_PORT`` (8000), ``GPUX_WEB_WORKERS`` (2), ``GPUX_VAR_DIR``
(``./var``). Run again, it starts at once: migrations, static files and the seed are each done only once.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

STOP_TIMEOUT = 15  # seconds a child gets to stop after SIGTERM before it is killed
READY_TIMEOUT = 120  # seconds gunicorn gets to answer /healthz


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

    from apps.core.management.commands.seed_demo import read_credentials

    stamp = var_dir / ".seeded"
    if not stamp.exists():
        log("seeding the demo organization ...")
        call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115 -- closed at exit
        stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return read_credentials()


def _children(host: str, port: int, var_dir: Path) -> dict[str, list[str]]:
    python = sys.executable
    workers = os.environ.get("GPUX_WEB_WORKERS", "2")
    return {
        "web": [
            python, "-m", "gunicorn", "gpux_portal.wsgi:application",
            "--bind", f"{host}:{port}", "--workers", workers, "--timeout", "60",
            "--access-logfile", "-", "--error-logfile", "-", "--log-level", "warning",
        ],
        "worker": [
            python, "-m", "celery", "-A", "gpux_portal", "worker",
            "-Q", "default,sync,inference.cpu", "--pool", "solo", "--loglevel", "WARNING",
            "--hostname", f"embedded@{host}",
        ],
        "beat": [
            python, "-m", "celery", "-A", "gpux_portal", "beat", "--loglevel", "WARNING",
            "--schedule", str(var_dir / "celerybeat-schedule"),
        ],
    }  # fmt: skip


def _wait_until_ready(url: str, processes: dict[str, subprocess.Popen]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                log(f"{name} exited with status {process.returncode} while starting.")
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


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop in {STOP_TIMEOUT} s; killing it.")
            process.kill()
            process.wait()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


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

    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in _children(host, port, var_dir).items():
            # Own sessions: a Ctrl-C in the terminal reaches this launcher only, which stops them in order.
            processes[name] = subprocess.Popen(command, start_new_session=True)  # noqa: S603 -- our own command
        url = f"http://{host}:{port}/"
        if not _wait_until_ready(f"{url}healthz", processes):
            _stop(processes)
            return 1
        accounts = " or ".join(f"{email} / {password}" for email, password in credentials.items())
        sign_in = f"sign in as {accounts}" if accounts else "sign in with your account"
        print(f"\nGPUX Portal is up: {url} — {sign_in}", flush=True)
        print(f"(web pid {processes['web'].pid}; e-mails are printed here; Ctrl-C stops everything)\n", flush=True)
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    log(f"{name} exited with status {process.returncode}; stopping the others.")
                    _stop(processes)
                    return 1
            time.sleep(0.5)
    except _Stop:
        log("stopping ...")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(processes)
        log("stopped.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
