"""gunicorn's configuration for GPUX Portal, used by ``make run`` and meant for production:

    gunicorn -c python:gpux_portal.gunicorn_conf gpux_portal.wsgi:application

Threaded workers (``gthread``): a request that waits for a prediction holds a thread, not a whole process, so
pages keep answering while predictions wait. Each process keeps some threads for everything else: it waits for
at most ``threads - reserve`` predictions at a time (``INFERENCE_SYNC_WAITS_PER_PROCESS``, passed to Django
through the environment); a synchronous prediction past that answers 202 with its job's URL at once instead of
taking the last threads. The request limit (``GPUX_WEB_TIMEOUT``) is also what Django allows a caller's
``timeout`` to come near (see ``apps.inference.predictions.sync_timeout``); a proxy in front must wait at least as
long.

Environment: ``GPUX_BIND`` (127.0.0.1:8000), ``GPUX_WEB_WORKERS`` (2), ``GPUX_WEB_THREADS`` (8),
``GPUX_WEB_TIMEOUT`` (60 s). Command-line options override these (``make run`` passes ``--bind``).
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


bind = os.environ.get("GPUX_BIND", "127.0.0.1:8000")
workers = _int("GPUX_WEB_WORKERS", 2)
worker_class = "gthread"
threads = _int("GPUX_WEB_THREADS", 8)
timeout = _int("GPUX_WEB_TIMEOUT", 60)
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"

# Read by gpux_portal/settings.py in the workers (the config runs in the master, before they fork).
os.environ.setdefault("GPUX_WEB_THREADS", str(threads))
os.environ.setdefault("GPUX_WEB_TIMEOUT", str(timeout))
os.environ.setdefault("INFERENCE_SYNC_WAITS_PER_PROCESS", str(max(1, threads - max(2, threads // 4))))


# Prometheus' multiprocess mode (docs/operator/monitoring.md): every worker process writes its metric files into one
# folder (PROMETHEUS_MULTIPROC_DIR, default <var>/metrics/web) that /metrics adds up. The master wipes it when it
# starts, before any worker imports prometheus_client (they inherit the environment); a worker that exits is marked
# dead (its live gauges go, its counters stay).
def on_starting(server) -> None:
    from apps.core.metrics_files import prepare_multiprocess_dir

    prepare_multiprocess_dir("web")


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
