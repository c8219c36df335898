"""Helpers for tests that look at usage events: the recorder writes to a Redis stream; ``drain_now`` copies it into
the database as the periodic drain does."""

from __future__ import annotations

import contextlib

from apps.analytics import drain, usage


def clear_usage_stream() -> None:
    """Forget what earlier tests recorded (their organizations are gone with their transactions)."""
    client = usage.client()
    usage._redis_down_until = 0.0
    with usage._buffer_lock:
        usage._buffer.clear()
    if client is None:
        return
    with contextlib.suppress(Exception):  # a test that stopped Redis: nothing to clear
        client.delete(usage.STREAM, drain.LOCK)


def drain_now() -> drain.DrainReport:
    usage.flush()  # what this process buffered
    return drain.drain_usage_stream(max_seconds=30)


def drained(model):
    """``Model.objects`` after draining the stream: ``drained(UsageEvent).get()``."""
    drain_now()
    return model.objects
