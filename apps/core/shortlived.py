"""Short-lived in-process caches of decisions read from the database on every request otherwise: which user a Bearer
token stands for, and whether a user may run a deployment (``restrict()``'s answer).

The bound: an entry is used for at most ``SHORT_LIVED_CACHE_SECONDS`` (2 s by default) after it was computed, so a
token revoked, a user deactivated, a membership removed or a deployment made private anywhere is refused by every
web process within that time. Most changes are seen sooner: a change saved through the ORM to a model that such a
decision reads (``WATCHED``, or a revocation that calls ``invalidate()``) clears this process's caches at once and
publishes an invalidation on Redis (``CHANNEL``) that every other process listening clears its caches on. Redis
away or a message lost: the time bound still holds.

Entries are read without locks (a dict read under the GIL). A decision is stored with the generation read before it
was computed, so a change that lands while it is computed makes it stale at once instead of keeping it for the
whole bound.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL = "gpux:shortlived:invalidate"
MISSING = object()
# Models whose changes can change a cached decision (app label, model name); guardian's permission tables of any
# app are matched by name (``...userobjectpermission`` / ``...groupobjectpermission``).
WATCHED = frozenset(
    {
        ("accounts", "user"),
        ("accounts", "apitoken"),
        ("organizations", "organization"),
        ("organizations", "membership"),
        ("organizations", "team"),
        ("inference", "deployment"),
        ("inference", "deploymentrevision"),
        ("marketplace", "model"),
        ("marketplace", "modelversion"),
        ("marketplace", "alias"),
        ("auth", "group"),
        ("account", "emailaddress"),
    }
)

_generation = 0
# How long a thread waits for another computing the same decision before computing it itself.
COMPUTE_WAIT_SECONDS = 5.0
_caches: list[ShortLivedCache] = []
_listener: tuple[int, threading.Thread] | None = None
_listener_lock = threading.Lock()


def bound_seconds() -> float:
    """How long a decision may be used after it was computed (``SHORT_LIVED_CACHE_SECONDS``; 0 turns caching off)."""
    return float(getattr(settings, "SHORT_LIVED_CACHE_SECONDS", 2.0))


def generation() -> int:
    """The current generation: read it before computing a decision, hand it to ``put``."""
    return _generation


class ShortLivedCache:
    """A dict of decisions, each used for at most ``bound_seconds()`` and until the next invalidation."""

    def __init__(self, name: str, *, max_entries: int = 50_000) -> None:
        self.name = name
        self.max_entries = max_entries
        self._entries: dict[Any, tuple[float, int, Any]] = {}
        self._computing: dict[Any, threading.Event] = {}
        self._computing_lock = threading.Lock()
        _caches.append(self)

    def get_or_compute(self, key: Any, compute: Any) -> Any:
        """The fresh value under ``key``, else ``compute()``'s, kept. One thread of the process computes a key at a
        time: the others asking for it meanwhile wait for that outcome (up to ``COMPUTE_WAIT_SECONDS``) instead of
        each sending the same queries. An entry expiring under load otherwise sent them once per waiting thread,
        a burst every ``bound_seconds()``. A computation that raised (a refusal is not kept) or whose value was
        not kept (a change landed meanwhile) leaves each waiter to compute its own."""
        found = self.get(key)
        if found is not MISSING:
            return found
        with self._computing_lock:
            running = self._computing.get(key)
            if running is None:
                running = self._computing[key] = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            running.wait(COMPUTE_WAIT_SECONDS)
            found = self.get(key)
            return found if found is not MISSING else self._compute_and_keep(key, compute)
        try:
            return self._compute_and_keep(key, compute)
        finally:
            with self._computing_lock:
                self._computing.pop(key, None)
            running.set()

    def _compute_and_keep(self, key: Any, compute: Any) -> Any:
        generation_before = _generation
        value = compute()
        self.put(key, value, generation_before)
        return value

    def get(self, key: Any) -> Any:
        """The value stored under ``key`` while fresh, else ``MISSING``."""
        entry = self._entries.get(key)
        if entry is None:
            return MISSING
        stored_at, stored_generation, value = entry
        if stored_generation != _generation or time.monotonic() - stored_at > bound_seconds():
            self._entries.pop(key, None)
            return MISSING
        return value

    def put(self, key: Any, value: Any, generation_before: int) -> None:
        """Keep ``value`` (computed after reading ``generation_before``) unless a change happened meanwhile."""
        if generation_before != _generation or bound_seconds() <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare: many callers within the bound; starting over is cheaper than an LRU
        ensure_listener()
        self._entries[key] = (time.monotonic(), generation_before, value)

    def clear(self) -> None:
        self._entries.clear()


def clear_local() -> None:
    """Forget every decision of this process (a change was seen)."""
    global _generation
    _generation += 1
    for cache in _caches:
        cache.clear()


def invalidate(*, publish: bool = True) -> None:
    """A change that may alter cached decisions: clear this process's caches and tell the other processes."""
    clear_local()
    if not publish:
        return
    client = _redis()
    if client is None:
        return
    try:
        client.publish(CHANNEL, b"1")
    except Exception as exc:  # Redis away: the others see the change within the bound anyway
        logger.info("Could not publish a cache invalidation: %s", exc)


def _redis():
    """A client of the portal's Redis (``REDIS_URL``), or None without one."""
    url = getattr(settings, "REDIS_URL", None)
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=None, health_check_interval=30)


def watched(sender: Any) -> bool:
    meta = getattr(sender, "_meta", None)
    if meta is None:
        return False
    name = meta.model_name
    return (meta.app_label, name) in WATCHED or name.endswith(("userobjectpermission", "groupobjectpermission"))


def on_change(sender: Any, **kwargs: Any) -> None:
    """post_save / post_delete / m2m_changed receiver (connected in ``CoreConfig.ready``)."""
    if kwargs.get("raw"):
        return
    action = kwargs.get("action")
    if action is not None and not action.startswith("post_"):
        return
    if watched(sender) or (action is not None and watched(getattr(kwargs.get("instance"), "__class__", None))):
        invalidate_on_commit()


def invalidate_on_commit() -> None:
    """``invalidate()`` for a change made in the current transaction: this process forgets now, and everyone is
    told once the change is committed (told earlier, another process could read the old rows again)."""
    from django.db import transaction

    clear_local()
    transaction.on_commit(invalidate)


def ensure_listener() -> None:
    """Listen for other processes' invalidations (a daemon thread per process, started when a cache is first
    filled; started again after a fork)."""
    global _listener
    pid = os.getpid()
    if _listener is not None and _listener[0] == pid and _listener[1].is_alive():
        return
    if _redis() is None:
        return
    with _listener_lock:
        if _listener is not None and _listener[0] == pid and _listener[1].is_alive():
            return
        thread = threading.Thread(target=_listen, name="shortlived-invalidations", daemon=True)
        _listener = (pid, thread)
        thread.start()


def _listen() -> None:
    import redis

    url = settings.REDIS_URL
    failures = 0
    while True:
        try:
            client = redis.Redis.from_url(url, socket_timeout=None, socket_connect_timeout=2)
            subscription = client.pubsub(ignore_subscribe_messages=True)
            subscription.subscribe(CHANNEL)
            clear_local()  # whatever was published while not listening
            failures = 0
            for message in subscription.listen():
                if message.get("type") == "message":
                    clear_local()
        except Exception as exc:
            failures += 1
            log = logger.info if failures == 1 else logger.debug
            log("Cache invalidations: not listening (%s); trying again in 1 s.", exc)
            clear_local()
            time.sleep(1.0)
