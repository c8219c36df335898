"""Which queue a prediction goes to: ``inference.gpu`` when it asks for a GPU (or may use one) and a GPU worker
is up, else ``inference.cpu``.

GPU workers announce themselves in a Redis sorted set (``gpux:inference:gpu-workers``, member = worker name,
score = last beat); a worker silent for ``STALE_SECONDS`` no longer counts. The web process caches the answer
for a couple of seconds so routing costs nothing per request.
"""

from __future__ import annotations

import time

from django.conf import settings

from apps.core.jobs import JobQueue
from apps.inference.models import Device

GPU_WORKERS_KEY = "gpux:inference:gpu-workers"
STALE_SECONDS = 30
CACHE_SECONDS = 2.0
_cached: tuple[float, bool] = (0.0, False)


def _redis():
    from apps.inference.completion import _client

    return _client()


def announce_gpu_worker(name: str) -> None:
    """A GPU worker's heartbeat (its ``worker_ready`` hook and a timer call it)."""
    client = _redis()
    if client is not None:
        client.zadd(GPU_WORKERS_KEY, {name: time.time()})


def withdraw_gpu_worker(name: str) -> None:
    client = _redis()
    if client is not None:
        client.zrem(GPU_WORKERS_KEY, name)


def gpu_worker_up() -> bool:
    """Whether a GPU worker beat within ``STALE_SECONDS`` (cached ``CACHE_SECONDS`` in this process)."""
    global _cached
    now = time.monotonic()
    if now - _cached[0] < CACHE_SECONDS:
        return _cached[1]
    client = _redis()
    up = bool(client is not None and client.zcount(GPU_WORKERS_KEY, time.time() - STALE_SECONDS, "+inf"))
    _cached = (now, up)
    return up


def queue_for(device: str) -> str:
    """The queue for a job that wants ``device`` (gpu, cpu or auto)."""
    if getattr(settings, "INFERENCE_FORCE_QUEUE", None):
        return settings.INFERENCE_FORCE_QUEUE
    if device == Device.GPU:
        return JobQueue.INFERENCE_GPU
    if device == Device.AUTO and gpu_worker_up():
        return JobQueue.INFERENCE_GPU
    return JobQueue.INFERENCE_CPU


def reset_cache() -> None:
    global _cached
    _cached = (0.0, False)


def compute_device(device: str) -> str:
    """``gpu`` or ``cpu``: where a run that asks for ``device`` (gpu, cpu, auto) goes, for its compute quota."""
    return "gpu" if queue_for(device) == "inference.gpu" else "cpu"
