"""How a synchronous prediction learns that its job finished: a Redis list per job.

The worker that records the outcome pushes one message onto ``gpux:inference:done:<job uuid>`` (kept for a
minute); the web process waiting for it pops it with ``BLPOP`` and a timeout, so an answer is back within a
Redis round trip of the job finishing, with no polling of the database. The message carries the outcome so the
web process need not read it back. A job started with nobody waiting (an asynchronous prediction: ``nobody_waits``)
is not announced: its message would only hold its answer in Redis for a minute. Without Redis (the embedded
``make run``) the waiting side polls the Job row.

A waiting request holds one of its web process's threads. So that pages keep answering however many predictions
wait, a process waits for at most ``INFERENCE_SYNC_WAITS_PER_PROCESS`` at once (set by gpux_portal/gunicorn_conf.py
to its threads less a reserve; 0: no limit): past that, ``wait_finished`` answers None at once, and the caller
answers as it does when the wait ran out (202 with the job's URL).
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cache
from typing import Any

from django.conf import settings

from apps.core import jsondata
from apps.core.jobs import FINISHED_STATUSES, Job

logger = logging.getLogger(__name__)

KEY_PREFIX = "gpux:inference:done:"
KEEP_SECONDS = 60
POLL_SECONDS = 0.02


@cache
def _client():
    url = getattr(settings, "REDIS_URL", None)
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=None, health_check_interval=30)


NOBODY_WAITS = "async"  # the job param of a prediction started with nobody waiting for it (answered 202 at once)


def nobody_waits(job: Job) -> bool:
    """Whether ``job`` was started with nobody waiting for its outcome (``NOBODY_WAITS``): then it is not announced."""
    return bool((job.params or {}).get(NOBODY_WAITS))


def notify_finished(job_uuid: Any, outcome: dict[str, Any], payload: bytes = b"") -> None:
    """Tell a waiting web process that the job finished: ``outcome`` (JSON) and optional binary payload."""
    client = _client()
    if client is None:
        return
    key = f"{KEY_PREFIX}{job_uuid}"
    message = jsondata.dumps(outcome) + b"\n" + payload
    with client.pipeline(transaction=False) as pipe:
        pipe.rpush(key, message)
        pipe.expire(key, KEEP_SECONDS)
        pipe.execute()


def notify_finished_many(messages: list[tuple[Any, dict[str, Any], bytes]]) -> None:
    """``notify_finished`` for a whole batch in one Redis round trip."""
    client = _client()
    if client is None or not messages:
        return
    with client.pipeline(transaction=False) as pipe:
        for job_uuid, outcome, payload in messages:
            key = f"{KEY_PREFIX}{job_uuid}"
            pipe.rpush(key, jsondata.dumps(outcome) + b"\n" + payload)
            pipe.expire(key, KEEP_SECONDS)
        pipe.execute()


_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _wait_slots() -> threading.BoundedSemaphore | None:
    """This process's semaphore of waiting requests (``INFERENCE_SYNC_WAITS_PER_PROCESS``), None without a limit."""
    global _slots
    limit = int(getattr(settings, "INFERENCE_SYNC_WAITS_PER_PROCESS", 0) or 0)
    if limit <= 0:
        return None
    with _slots_lock:
        if _slots is None or _slots[0] != limit:
            _slots = (limit, threading.BoundedSemaphore(limit))
        return _slots[1]


def wait_finished(job: Job, timeout: float) -> tuple[dict[str, Any], bytes] | None:
    """The outcome and payload once ``job`` finished, or None after ``timeout`` seconds, or at once when this
    process already holds as many waiting requests as it may (the module docstring).

    With Redis: one ``BLPOP``; the outcome is the worker's message. Without: the Job row is polled and the
    outcome is ``{"status": ...}`` (the caller reads the rest from the database).
    """
    slots = _wait_slots()
    if slots is not None and not slots.acquire(blocking=False):
        logger.info("Not waiting for job %s: this process already holds its most waiting requests.", job.uuid)
        return None
    try:
        return _wait(job, timeout)
    finally:
        if slots is not None:
            slots.release()


def _wait(job: Job, timeout: float) -> tuple[dict[str, Any], bytes] | None:
    client = _client()
    if client is None:
        deadline = time.monotonic() + timeout
        while True:
            status = Job.objects.filter(pk=job.pk).values_list("status", flat=True).first()
            if status in FINISHED_STATUSES or status is None:
                return {"status": status}, b""
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_SECONDS)
    if timeout <= 0:
        return None
    popped = client.blpop([f"{KEY_PREFIX}{job.uuid}"], timeout=timeout)
    if popped is None:
        return None
    header, _, payload = popped[1].partition(b"\n")
    from apps.inference.online.messages import load_header

    return load_header(header), payload
