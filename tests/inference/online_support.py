"""Helpers for online serving tests: wait until a worker's serving loop beats, and read what waits in Redis."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from apps.inference.online import gateway, messages
from tests.jobs_support import wait_for


def predictions_written() -> bool:
    """Whether any prediction job was written (online requests write none; validation jobs do not count)."""
    from apps.core.jobs import Job
    from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND

    return Job.objects.filter(kind__in=(PREDICT_KIND, BATCHED_PREDICT_KIND)).exists()


def forget_online_requests() -> None:
    """Drop every online key an earlier test left in this run's Redis (queues, replies, taken marks, loops)."""
    client = gateway._client()
    keys = list(client.scan_iter(match=f"{messages.PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)
    gateway.reset()


def wait_for_serving_loop(queue: str = "inference.cpu", timeout: float = 60) -> None:
    def up() -> bool:
        gateway.reset()
        return gateway.loop_up(queue)

    wait_for(up, timeout=timeout, interval=0.2, what=f"a serving loop on {queue}")
    gateway.reset()


def queued(queue: str = "inference.cpu") -> int:
    """How many online requests wait in ``queue``'s list now."""
    return int(gateway._client().llen(messages.queue_key(queue)))


@contextlib.contextmanager
def no_waiting_slot_left(settings) -> Iterator[None]:
    """This process may hold one waiting request, and another holds it: the online path hands synchronous requests
    over to the durable one (202 with their job) while this lasts."""
    from apps.inference.completion import _wait_slots

    settings.INFERENCE_SYNC_WAITS_PER_PROCESS = 1
    slots = _wait_slots()
    assert slots.acquire(blocking=False)
    try:
        yield
    finally:
        slots.release()
