"""The web side of online serving: send a checked request to its queue's serving loops and wait for the answer.

One round trip admits the request (``ADMIT``: its rate limits, its deployment's requests in flight), pushes it
(inputs included) onto the queue's list and starts ``BLPOP`` on the request's own reply key; the wait goes on in
slices of a second: after a slice with no answer, the loop that took the request (``taken:<id>``) is asked
whether it still beats (``alive:<loop>``); a loop that died answers 503 at once, well within the caller's timeout.
Nothing answered by the timeout: 503 too. Both carry ``Retry-After``: online serving is at most once, the client
retries. Redis not answering: 503 ``queue_unavailable`` (the API's handler for broker errors).

Whether to go online at all (``online_available``): Redis is configured, ``INFERENCE_ONLINE_SERVING`` is on, a
serving loop beat for the queue within the last few seconds (read at most once a second per process) and this
process has a waiting slot left (``completion._wait_slots``, which keeps threads for pages). Otherwise the request
takes the durable path, as an asynchronous one does.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from rest_framework import exceptions, status

from apps.analytics import quotas
from apps.inference.online import messages
from apps.inference.online.loop import ALIVE_SECONDS

logger = logging.getLogger(__name__)

LOOP_CHECK_SECONDS = 1.0
SLICE_SECONDS = 1.0
LINK_TIMEOUT_SECONDS = 10.0  # a Redis that stops answering (not down: hung) costs a request this, not its thread
_loops_seen: dict[str, tuple[float, bool]] = {}


class OnlineUnavailable(exceptions.APIException):
    """503 with ``Retry-After``: the request was not answered (its worker died, or nothing answered in time)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "not_answered"

    def __init__(self, detail: str, *, code: str = "not_answered", wait: int = 1) -> None:
        super().__init__(detail, code)
        self.wait = wait


def enabled() -> bool:
    return bool(getattr(settings, "INFERENCE_ONLINE_SERVING", True)) and bool(getattr(settings, "REDIS_URL", None))


def _client() -> Any:
    from apps.inference.completion import _client as redis_client

    return redis_client()


def loop_up(queue: str) -> bool:
    """Whether a serving loop beat for ``queue`` within ``ALIVE_SECONDS`` (read at most once a second)."""
    now = time.monotonic()
    seen = _loops_seen.get(queue)
    if seen is not None and now - seen[0] < LOOP_CHECK_SECONDS:
        return seen[1]
    try:
        up = bool(_client().zcount(messages.loops_key(queue), time.time() - ALIVE_SECONDS, "+inf"))
    except Exception as exc:  # Redis away: the durable path says so in its own way (503 queue_unavailable)
        logger.info("Online serving: could not see the serving loops (%s)", exc)
        up = False
    _loops_seen[queue] = (now, up)
    return up


def reset() -> None:
    _loops_seen.clear()


def online_available(queue: str) -> bool:
    return enabled() and loop_up(queue)


# One round trip admits and sends a request, and starts its wait. ARGV[4] throttle windows and ARGV[5] per-minute
# quota windows, ARGV[6] the quota windows' length (ms) and ARGV[7] this request's member in them. First the route's
# rate limits (KEYS[3 + j], the j-th throttle window's counter: INCR, EXPIRE after ARGV[7 + 2j] s, refused past
# ARGV[6 + 2j] requests, as apps/core/api/throttling.py counts them): a refusal answers {-1, j, 0}. Then the
# organization's and the token's per-minute prediction quotas (KEYS[3 + throttles + i], sliding windows of
# apps/analytics/quotas.py, limit ARGV[7 + 2 * throttles + i]): a full one answers {-2, i, milliseconds to wait}.
# Then its deployment's requests in flight (KEYS[2], ARGV[2] at most, expiring after ARGV[3] s untouched, as
# ``predictions.acquire_slot``): a full deployment answers {0, 0, 0}. Then the request is counted in its quota windows
# and pushed onto its queue (KEYS[1]): {1, 0, 0}. Nothing is counted in a quota nor pushed unless it answers 1.
# Without a slot key (a version's route) there is no count in flight. A refusal also pushes REFUSED onto the
# request's reply key (KEYS[3]): the gateway sends its first BLPOP on that key in the same round trip, right behind
# this script, and that BLPOP must not wait for an answer that will never come.
ADMIT = (
    quotas.WINDOW_WAIT
    + """
local throttles, windows = tonumber(ARGV[4]), tonumber(ARGV[5])
local function refuse(code, index, wait)
  redis.call('RPUSH', KEYS[3], 'refused')
  redis.call('EXPIRE', KEYS[3], 60)
  return {code, index, wait}
end
for j = 1, throttles do
  local count = redis.call('INCR', KEYS[3 + j])
  redis.call('EXPIRE', KEYS[3 + j], ARGV[7 + 2 * j])
  if count > tonumber(ARGV[6 + 2 * j]) then return refuse(-1, j, 0) end
end
local now, window = 0, tonumber(ARGV[6])
if windows > 0 then
  now = redis_now_ms()
  for i = 1, windows do
    local wait = window_wait(KEYS[3 + throttles + i], tonumber(ARGV[7 + 2 * throttles + i]), now, window)
    if wait > 0 then return refuse(-2, i, wait) end
  end
end
if KEYS[2] ~= '' then
  local count = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  if count > tonumber(ARGV[2]) then
    redis.call('DECR', KEYS[2])
    return refuse(0, 0, 0)
  end
end
for i = 1, windows do
  redis.call('ZADD', KEYS[3 + throttles + i], now, ARGV[7])
  redis.call('PEXPIRE', KEYS[3 + throttles + i], window)
end
redis.call('RPUSH', KEYS[1], ARGV[1])
return {1, 0, 0}
"""
)
ADMIT_BYTES = ADMIT.encode()
REFUSED = b"refused"  # never a message: those begin with their JSON header
# Give a request's place back (never below zero: the serving loop gives back what it answered, the caller what it
# stopped waiting for, and the one race between the two, an answer at the very moment the caller gives up, must not
# leave the count lower than the requests really in flight).
RELEASE = "if redis.call('DECR', KEYS[1]) < 0 then redis.call('SET', KEYS[1], 0) end return 1"


class QuotaFull(Exception):
    """One of the organization's or the token's per-minute prediction quotas (``OnlineRequest.quota``) is full
    (nothing was sent nor counted): ``quota.refusal(index, wait)`` is its 429."""

    def __init__(self, index: int, wait: float) -> None:
        super().__init__(index, wait)
        self.index, self.wait = index, wait


class DeploymentFull(Exception):
    """The deployment has ``concurrency`` requests in flight already (nothing was sent): 429."""


class RateLimited(Exception):
    """One of the route's rate limits (``OnlineRequest.throttles``) is used up for this window (nothing was sent):
    429 with ``Retry-After`` the seconds in ``wait``."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.wait = wait


@dataclass
class Slot:
    """Where a deployment counts its requests in flight, its cap, and how long an untouched count lives."""

    key: str
    cap: int
    expires: int


@dataclass
class OnlineRequest:
    """What the serving loop needs: the version to run, the checked inputs (or readable ones), the batching
    settings, which outputs to send back, and the deadline."""

    version_id: int
    queue: str
    deployment_id: int | None = None
    timeout: float = 30.0
    arrays: dict[str, np.ndarray] | None = None
    raw: dict[str, Any] | None = None
    outputs: list[str] | None = None
    max_batch: int = 1
    delay_ms: int = 0
    provider: str = "auto"
    time_limit: float = 60.0
    slot: Slot | None = None
    throttles: list[Any] = field(default_factory=list)  # apps.core.api.throttling.Window: counted in the admission
    quota: quotas.RateWindows | None = None  # the per-minute prediction quotas: counted in the admission too
    admitted: bool = False  # the admission ran (its rate limits counted), whether it sent the request or not
    sent: bool = False  # pushed (and counted on its deployment's slot): whoever sent it releases the slot
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class OnlineReply:
    header: dict[str, Any]
    outputs: dict[str, np.ndarray]
    latency_ms: float
    request_bytes: int
    reply_bytes: int

    @property
    def succeeded(self) -> bool:
        return self.header.get("status") == "succeeded"


def send_and_wait(request: OnlineRequest) -> OnlineReply:
    """Send ``request`` and wait for its answer (see the module docstring); raises ``OnlineUnavailable``."""
    from apps.inference.completion import _wait_slots

    slots = _wait_slots()
    if slots is not None and not slots.acquire(blocking=False):
        raise NoWaitingSlot()
    try:
        return _send_and_wait(request)
    finally:
        if slots is not None:
            slots.release()


def release(slot: Slot) -> None:
    """Give back the place of a request sent on ``slot`` whose answer its caller stopped waiting for (the serving
    loop gives back those it answers, in the round trip of its answers)."""
    try:
        _client().eval(RELEASE, 1, slot.key)
    except Exception as exc:  # Redis away: the count expires by itself (Slot.expires)
        logger.info("Online serving: could not give back a place on %s (%s)", slot.key, exc)


def push_job(queue: str, job_id: int, batch: dict[str, Any]) -> bool:
    """Send a durable prediction job (its row committed) to the serving loops of ``queue``: its id and its
    deployment's batching settings; the loop reads its inputs from its row."""
    from redis.exceptions import RedisError

    from apps.inference.online.link import drop_thread_link, thread_link

    header = {"job": job_id, "max": int(batch.get("max", 1)), "delay_ms": int(batch.get("delay_ms", 0))}
    try:  # this thread's own link, as the online path's round trips (redis-py's layers cost more than the push)
        thread_link(settings.REDIS_URL, socket_timeout=LINK_TIMEOUT_SECONDS).call(
            "RPUSH", messages.queue_key(queue), messages.pack(header)
        )
    except RedisError:
        drop_thread_link()  # broken: the next push makes a new one; this job goes the broker's way (send_job)
        raise
    return True


class NoWaitingSlot(Exception):
    """This process already holds as many waiting requests as it may: take the durable path (202)."""


def _send_and_wait(request: OnlineRequest) -> OnlineReply:
    """Through this thread's own Redis link (apps/inference/online/link.py): the admission and the wait are the
    web's hot round trips, and redis-py's layers around each command cost more than the command."""
    from redis.exceptions import RedisError

    from apps.inference.online.link import drop_thread_link, thread_link

    try:
        return _admit_and_wait(request, thread_link(settings.REDIS_URL, socket_timeout=LINK_TIMEOUT_SECONDS))
    except RedisError:
        drop_thread_link()  # broken, or a reply left unread: the next request makes a new one
        raise


def _admit_and_wait(request: OnlineRequest, client: Any) -> OnlineReply:
    started = time.monotonic()
    deadline = time.time() + request.timeout
    header = {
        "id": request.id,  # first: the serving loop's ANSWER_AND_TAKE reads it from the header's start
        **({"slot": request.slot.key} if request.slot is not None else {}),
        "version": request.version_id,
        "deadline": deadline,
        "max": request.max_batch,
        "delay_ms": request.delay_ms,
        "provider": request.provider,
        "time_limit": request.time_limit,
        "deployment": request.deployment_id,
        "sent": time.time(),
    }
    if request.outputs is not None:
        header["outputs"] = request.outputs
    if request.raw is not None:
        header["raw"] = request.raw
    message = messages.pack(header, request.arrays)
    reply_key = messages.reply_key(request.id)
    slot = request.slot
    quota = request.quota
    keys = [messages.queue_key(request.queue), slot.key if slot else "", reply_key]
    args: list[Any] = [message, slot.cap if slot else 0, slot.expires if slot else 0, len(request.throttles)]
    args += [len(quota.keys), quotas.WINDOW_MS, quota.member] if quota is not None else [0, quotas.WINDOW_MS, ""]
    for window in request.throttles:
        keys.append(window.key)
        args += [window.limit, window.expires]
    if quota is not None:
        keys += quota.keys
        args += quota.limits
    # The admission and the first slice of the wait in one round trip (``RedisLink.then``). ``EVAL`` with the
    # script's text, not ``EVALSHA``: a Redis that restarted or flushed its scripts would answer NOSCRIPT, and the
    # BLPOP behind it would then wait a slice for nothing. Redis hashes the text to find its compiled script.
    ends = started + request.timeout
    admitted, popped = client.then(
        ("EVAL", ADMIT_BYTES, len(keys), *keys, *args),
        ("BLPOP", reply_key, max(0.01, min(request.timeout, SLICE_SECONDS))),
    )
    admitted, index, wait_ms = (int(value) for value in admitted)
    request.admitted = True
    if admitted <= 0:  # the BLPOP took the REFUSED the script pushed
        if admitted == -1:
            raise RateLimited(max(0.0, request.throttles[index - 1].retry_in))
        if admitted == -2:
            raise QuotaFull(index, wait_ms / 1000.0)
        raise DeploymentFull()
    request.sent = True
    while True:
        if popped:
            answer = popped[1]
            reply_header, outputs = messages.unpack(answer)
            return OnlineReply(
                reply_header,
                outputs,
                latency_ms=(time.monotonic() - started) * 1000,
                request_bytes=len(message),
                reply_bytes=len(answer),
            )
        taker = client.call("GET", messages.taken_key(request.id))
        if taker is not None and not client.call("EXISTS", messages.alive_key(taker.decode())):
            raise OnlineUnavailable(
                "The worker that was running this request stopped before answering; it was not run again. "
                "Try again (another worker takes it).",
                code="worker_lost",
                wait=1,
            )
        remaining = ends - time.monotonic()
        if remaining <= 0:
            raise OnlineUnavailable(
                f"No answer within {request.timeout:g} s (the workers are busy or none serves this queue now); "
                "nothing was kept: try again, or send the request asynchronously (?async=1).",
                code="not_answered",
                wait=1,
            )
        popped = client.call("BLPOP", reply_key, max(0.01, min(remaining, SLICE_SECONDS)))
