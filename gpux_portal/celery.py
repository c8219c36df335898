"""The Celery application. Queues: inference.gpu, inference.cpu, sync, default (DESIGN.md)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpux_portal.settings")

app = Celery("gpux_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("default"), Queue("sync"), Queue("inference.cpu"), Queue("inference.gpu")]
app.autodiscover_tasks()
