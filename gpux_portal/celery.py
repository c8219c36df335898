"""The Celery application. Queues: inference.gpu, inference.cpu, checks, sync, default (DESIGN.md)."""

from __future__ import annotations

import os

from celery import Celery, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpux_portal.settings")

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
