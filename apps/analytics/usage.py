"""Recording usage off the request's hot path: ``record()`` appends one event to a Redis stream (one pipelined XADD,
no database write) and the periodic drain (``apps.analytics.drain``) copies the stream into ``UsageEvent`` in bulk.

Call it where a counted use happens, once per use::

    from apps.analytics import usage

    usage.record(
        "prediction",                       # a UsageKind: download, prediction, job, batch_rows, registry_pull, sync
        organization_id=deployment.organization_id,   # whom it counts against (required)
        user_id=request.user.pk,            # None for anonymous callers
        token_id=token.pk, token_kind=token.kind,     # or **usage.caller(request) for user, token and its kind
        model_id=version.model_id, version_id=version.pk, deployment_id=deployment.pk,
        items=batch_size, bytes=len(body), latency_ms=12.5,
        outcome="ok",                       # ok | error | refused
        status_code=200,
        compute_seconds=0.004, device="gpu",  # counted against the monthly compute quota of the organization
    )

Every argument but ``kind`` is keyword-only; all but ``organization_id`` are optional. Also: ``subject_type``,
``subject_id``, ``subject_label``, ``path``, ``blob_sha256``, ``metadata`` (a small JSON object), ``occurred_at``
(epoch seconds, default now) and ``event_id`` (a UUID hex; the drain inserts each id once, so a caller that retries
may pass the same id). It returns the event id. ``record_many(events)`` sends a list of such keyword dicts (each with
its ``kind``) in one round trip, for a batching loop.

Cost: microseconds of the request's CPU (benchmarks/analytics.py measures it against recording off). Events wait in
a per-process buffer that a background thread sends every ``USAGE_RECORD_BUFFER_SECONDS`` (0.05) in one pipelined
XADD round trip for all of them, and at exit; Celery workers send it after each task. What a SIGKILLed process had
not sent yet (at most that interval's events) is lost; ``USAGE_RECORD_BUFFER_SECONDS=0`` sends each event from the
request itself (one round trip each, nothing buffered). Never raises: when Redis does not answer, the events are
written to the database directly (and Redis is not tried again for ``USAGE_REDIS_RETRY_SECONDS``); without Redis
(``make run``) they are always written directly. ``USAGE_RECORDING=false`` turns recording off.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

STREAM = "gpux:usage:events"
# Who downloaded a version recently, until the drain has written their events: the yank rule reads it.
RECENT_DOWNLOADS_PREFIX = "gpux:usage:downloaded:"
RECENT_DOWNLOADS_SECONDS = 86_400
# Compute seconds per organization and month, by device: what the compute quota checks (apps.analytics.quotas).
COMPUTE_PREFIX = "gpux:quota:compute:"
COMPUTE_KEEP_SECONDS = 40 * 86_400

_FIELDS = (
    "user_id", "token_id", "token_kind", "model_id", "version_id", "deployment_id", "items", "bytes", "latency_ms",
    "outcome", "status_code", "compute_seconds", "device", "subject_type", "subject_id", "subject_label", "path",
    "blob_sha256", "metadata",
)  # fmt: skip

_clients: dict[str, Any] = {}
_lock = threading.Lock()
_redis_down_until = 0.0


def stream_url() -> str | None:
    """The Redis the stream lives in: ``USAGE_REDIS_URL``, else ``REDIS_URL``; None runs without a stream."""
    return getattr(settings, "USAGE_REDIS_URL", None) or getattr(settings, "REDIS_URL", None) or None


def client() -> Any:
    """A Redis client for the stream (one per URL and process), with short timeouts: a request never waits long."""
    url = stream_url()
    if not url:
        return None
    found = _clients.get(url)
    if found is None:
        import redis

        timeout = float(getattr(settings, "USAGE_REDIS_TIMEOUT_SECONDS", 0.5))
        with _lock:
            found = _clients.get(url)
            if found is None:
                found = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
                _clients[url] = found
    return found


def month_key(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%Y-%m")


def caller(request: Any) -> dict[str, Any]:
    """``user_id``, ``token_id`` and ``token_kind`` of a request (DRF's ``request.auth`` is the ApiToken)."""
    user = getattr(request, "user", None)
    token = getattr(request, "auth", None)
    token_id = getattr(token, "pk", None) if token is not None and hasattr(token, "prefix") else None
    return {
        "user_id": user.pk if user is not None and getattr(user, "is_authenticated", False) else None,
        "token_id": token_id,
        "token_kind": getattr(token, "kind", "") if token_id is not None else "",
    }


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """The stream's form of one event (short, JSON-ready): what ``record`` sends and the drain reads."""
    organization_id = fields.pop("organization_id")
    made: dict[str, Any] = {
        "id": fields.pop("event_id", None) or uuid.uuid4().hex,
        "t": fields.pop("occurred_at", None) or time.time(),
        "kind": str(kind),
        "org": int(organization_id),
    }
    for name in _FIELDS:
        value = fields.pop(name, None)
        if value is not None and value != "":
            made[name] = value
    if fields:
        raise TypeError(f"usage.record() got unexpected arguments: {', '.join(sorted(fields))}")
    return made


def record(kind: str, **fields: Any) -> str | None:
    """Record one use (see the module's docstring for the arguments); returns its event id, None when off."""
    if not getattr(settings, "USAGE_RECORDING", True):
        return None
    made = event(kind, **fields)
    _send([made])
    return made["id"]


def record_many(events: Iterable[dict[str, Any]]) -> list[str]:
    """Record several uses in one round trip; each item is ``record``'s keyword arguments plus ``kind``."""
    if not getattr(settings, "USAGE_RECORDING", True):
        return []
    made = [event(**dict(fields)) for fields in events]
    if made:
        _send(made)
    return [one["id"] for one in made]


_buffer: list[dict[str, Any]] = []
_buffer_lock = threading.Lock()
_wake = threading.Event()
_flusher_pid: int | None = None
# The compute seconds this process has recorded, by (organization, month) then device, since it started: what the
# compute quota adds to the counters it read a moment ago (``own_compute``, ``quotas.compute_used``).
_own_compute: dict[tuple[int, str], dict[str, float]] = {}


def own_compute(organization_id: int, month: str) -> dict[str, float]:
    """The compute seconds this process has recorded for ``organization_id`` in ``month`` (``month_key``), by device,
    since it started (or forked)."""
    with _buffer_lock:
        return dict(_own_compute.get((organization_id, month)) or {})


def _tally(events: list[dict[str, Any]]) -> None:
    for one in events:
        if one.get("compute_seconds"):
            key = (one["org"], month_key(datetime.fromtimestamp(one["t"], UTC)))
            device = one.get("device") or "cpu"
            with _buffer_lock:
                if key not in _own_compute and len(_own_compute) > 10_000:  # a long-lived process: past months go
                    for old in [old for old in _own_compute if old[1] != key[1]]:
                        del _own_compute[old]
                devices = _own_compute.setdefault(key, {})
                devices[device] = devices.get(device, 0.0) + float(one["compute_seconds"])


def _forget_parents_buffer() -> None:
    """In a forked child: the buffer's events are the parent's to send; the flusher thread did not survive."""
    global _buffer_lock, _flusher_pid, _wake
    _buffer.clear()
    _own_compute.clear()
    _buffer_lock = threading.Lock()
    _wake = threading.Event()
    _flusher_pid = None


os.register_at_fork(after_in_child=_forget_parents_buffer)


def _flush_every(interval: float) -> None:
    while True:
        _wake.wait(interval)
        _wake.clear()
        flush()


def flush() -> None:
    """Send what this process has buffered now (tests, the end of a Celery task, exit)."""
    with _buffer_lock:
        if not _buffer:
            return
        events = _buffer[:]
        _buffer.clear()
    _send_now(events)


def _send(events: list[dict[str, Any]]) -> None:
    global _flusher_pid
    _tally(events)
    interval = float(getattr(settings, "USAGE_RECORD_BUFFER_SECONDS", 0.05))
    if interval <= 0 or stream_url() is None:  # without a stream the database write is the recording
        _send_now(events)
        return
    with _buffer_lock:
        _buffer.extend(events)
        waiting = len(_buffer)
        if _flusher_pid != os.getpid():
            _flusher_pid = os.getpid()
            threading.Thread(target=_flush_every, args=(interval,), name="usage-recorder", daemon=True).start()
            atexit.register(flush)
    if waiting >= 1000:
        _wake.set()


def _counts_as_downloaded(one: dict[str, Any]) -> bool:
    return bool(
        one["kind"] == "download"
        and one.get("user_id")
        and one.get("subject_id")
        and one.get("status_code", 200) in (200, 206, 302)
        and one.get("outcome", "ok") == "ok"
    )


def _send_now(events: list[dict[str, Any]]) -> None:
    global _redis_down_until
    redis_client = client()
    if redis_client is None or time.monotonic() < _redis_down_until:
        _write_now(events)
        return
    max_length = int(getattr(settings, "USAGE_STREAM_MAX_LENGTH", 2_000_000))
    # One XADD per event; the counters they touch once per flush, however many events touch them: a flush of a busy
    # web process carries tens of predictions of one organization, each of which cost three commands of redis-py's
    # pipeline (the XADD, the compute counter and its expiry), its packing and reply parsing all in Python.
    downloaded: dict[str, set[Any]] = {}
    compute: dict[tuple[str, str], float] = {}
    for one in events:
        if _counts_as_downloaded(one):
            downloaded.setdefault(f"{RECENT_DOWNLOADS_PREFIX}{one['subject_id']}", set()).add(one["user_id"])
        if one.get("compute_seconds"):
            key = f"{COMPUTE_PREFIX}{one['org']}:{month_key(datetime.fromtimestamp(one['t'], UTC))}"
            device = one.get("device") or "cpu"
            compute[key, device] = compute.get((key, device), 0.0) + float(one["compute_seconds"])
    try:
        pipe = redis_client.pipeline(transaction=False)
        for one in events:
            pipe.xadd(STREAM, {"e": json.dumps(one, separators=(",", ":"))}, maxlen=max_length, approximate=True)
        for key, users in downloaded.items():
            pipe.sadd(key, *sorted(users))
            pipe.expire(key, RECENT_DOWNLOADS_SECONDS)
        for (key, device), seconds in compute.items():
            pipe.hincrbyfloat(key, device, seconds)
        for key in {key for key, _device in compute}:
            pipe.expire(key, COMPUTE_KEEP_SECONDS)
        pipe.execute()
    except Exception as exc:  # redis.RedisError and socket errors: never fail the use being recorded
        _redis_down_until = time.monotonic() + float(getattr(settings, "USAGE_REDIS_RETRY_SECONDS", 5))
        logger.warning("Usage stream unavailable (%s): writing %d event(s) to the database directly", exc, len(events))
        _write_now(events)


def _write_now(events: list[dict[str, Any]]) -> None:
    """Without the stream: the drain's own insert, now (idempotent by event id). Never raises."""
    from apps.analytics.drain import store_events

    try:
        store_events(events)
    except Exception:
        logger.exception("Could not write %d usage event(s); they are lost", len(events))


def recently_downloaded(*, user_id: int, subject_id: str) -> bool:
    """Whether the stream side knows of a download of ``subject_id`` by ``user_id`` not yet drained, maybe."""
    with _buffer_lock:
        if any(_counts_as_downloaded(e) and e["subject_id"] == subject_id and e["user_id"] == user_id for e in _buffer):
            return True
    redis_client = client()
    if redis_client is None or time.monotonic() < _redis_down_until:
        return False
    try:
        return bool(redis_client.sismember(f"{RECENT_DOWNLOADS_PREFIX}{subject_id}", user_id))
    except Exception:
        return False
