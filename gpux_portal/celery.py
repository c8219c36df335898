"""The Celery application. Queues: inference.gpu, inference.cpu, sync, default (DESIGN.md)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpux_portal.settings")

app = Celery("gpux_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue gets its own routing key: without one, Celery binds every queue to the default exchange with the
# key "default", and a message sent to one queue is delivered to all four.
app.conf.task_queues = [Queue(name, routing_key=name) for name in ("default", "sync", "inference.cpu", "inference.gpu")]
app.autodiscover_tasks()
