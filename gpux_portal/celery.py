"""The Celery application. Queues: inference.gpu, inference.cpu, checks, sync, default (DESIGN.md)."""

from __future__ import annotations

import logging
import os
import time

import click
from celery import Celery, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpux_portal.settings")
logger = logging.getLogger(__name__)

app = Celery("gpux_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue gets its own routing key: without one, Celery binds every queue to the default exchange with the
# key "default", and a message sent to one queue is delivered to all four.
app.conf.task_queues = [
    Queue(name, routing_key=name) for name in ("default", "sync", "inference.cpu", "inference.gpu", "checks")
]
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_connections(task=None, **kwargs) -> None:
    """Around every task on a worker, as around every web request: close a connection that is broken or past
    ``CONN_MAX_AGE`` (checked with ``CONN_HEALTH_CHECKS``); keep a healthy one (``CELERY_DB_REUSE_MAX``). Not for
    a task run eagerly, inside the caller's own transaction."""
    from django.db import close_old_connections as close

    if task is not None and getattr(task.request, "is_eager", False):
        return
    close()


# --- metrics (docs/operator/monitoring.md) ----------------------------------------------------------------------
# ``celery worker --metrics-port N`` (or GPUX_WORKER_METRICS_PORT): the worker's main process serves the sum of its
# pool processes' metrics on that port (address: --metrics-address / GPUX_WORKER_METRICS_ADDRESS, 127.0.0.1). The
# option is a preload option so that its signal comes before Django and any metric are loaded: multiprocess files
# must be chosen before prometheus_client is first imported.
app.user_options["preload"].add(
    click.Option(
        ["--metrics-port"],
        type=int,
        default=None,
        envvar="GPUX_WORKER_METRICS_PORT",
        help="Serve this worker's Prometheus metrics on this port (0: none).",
    )
)
app.user_options["preload"].add(
    click.Option(
        ["--metrics-address"],
        default=None,
        envvar="GPUX_WORKER_METRICS_ADDRESS",
        help="The address the metrics port listens on (127.0.0.1).",
    )
)
_worker_metrics: dict[str, object] = {"port": None, "address": "127.0.0.1"}
_metrics_servers: dict[str, object] = {}  # worker name -> its WorkerMetricsServer (tests run several in a process)


@signals.user_preload_options.connect
def prepare_worker_metrics(sender=None, options=None, **kwargs) -> None:
    """``celery worker`` with a metrics port: its own folder of metric files, wiped, before anything records."""
    if getattr(sender, "__name__", "") != "worker" or not options or not options.get("metrics_port"):
        return
    from apps.core.metrics_files import prepare_multiprocess_dir

    port = int(options["metrics_port"])
    _worker_metrics.update(port=port, address=options.get("metrics_address") or "127.0.0.1")
    prepare_multiprocess_dir(f"worker-{port}")


@signals.worker_ready.connect
def start_worker_metrics(sender=None, **kwargs) -> None:
    """In the worker's main process, once it consumes: its heartbeat (queues, GPUs, a snapshot of its metrics) and,
    with a metrics port, the port."""
    from apps.core.metrics import WorkerMetricsServer, multiprocess_enabled

    consumer = getattr(sender, "consumer", None) or sender
    queues = [queue.name for queue in getattr(getattr(consumer, "task_consumer", None), "queues", [])]
    port = _worker_metrics["port"]
    if port and not multiprocess_enabled():
        logger.error("Worker metrics: prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    name = getattr(sender, "hostname", None) or "worker"
    server = WorkerMetricsServer(name=name, queues=queues, port=port, address=_worker_metrics["address"])
    _metrics_servers[name] = server.start()


@signals.worker_shutdown.connect
def stop_worker_metrics(sender=None, **kwargs) -> None:
    server = _metrics_servers.pop(getattr(sender, "hostname", None) or "worker", None)
    if server is not None:
        server.stop()


@signals.worker_process_shutdown.connect
def forget_pool_process(pid=None, **kwargs) -> None:
    """A pool process leaves: its live gauges go (its counters and histograms stay in the sum)."""
    from apps.core.metrics import mark_process_dead

    mark_process_dead(pid or os.getpid())


@signals.before_task_publish.connect
def stamp_sent_time(headers=None, **kwargs) -> None:
    """Every message says when it was sent, so that the age of a queue's oldest message can be read by peeking."""
    if headers is not None:
        headers.setdefault("gpux_sent_at", time.time())
