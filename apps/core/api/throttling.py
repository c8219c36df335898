"""The API's rate limits: DRF's throttles, counted in fixed windows in Redis, each web process taking its permits in
leases.

DRF's ``SimpleRateThrottle`` keeps a list of every request's time in the cache, reads it, prunes it and writes it
back: two round trips and a pickle that grows with the rate (6,000 floats for "6000/minute" at full use). Here a
window of the rate's duration has one counter in Redis; over the rate a request answers 429 with ``Retry-After``
the seconds left in the window. A fixed window lets a client send up to twice the rate across a window's edge,
which is what a rate limit of this kind is for: keeping a client's volume in bounds.

**Leases.** A web process does not ask Redis for every request: it takes a lease of permits for the caller's window
(``INCRBY`` the counter by the lease, ``EXPIRE``, one round trip) and spends them on that caller's requests in this
window without asking again. A lease is a hundredth of the rate, at most ``LEASE_MOST`` permits, and a single one
for a rate under 200 a window (so small limits count every request, as before). Permits are counted in Redis when
leased, so no process can let through more than the rate: the limit holds exactly across processes. What a
process leased and did not spend by the window's end is lost: a caller may be refused up to one lease per other web
process early (1 % of the rate each). Under load this round trip was what the throttle cost: 0.2-0.3 ms of web CPU
a request at concurrency 32 (issue #15, benchmarks/RESULTS.md), on every API route.

Without a Redis cache (the embedded ``make run``) and while Redis does not answer, DRF's own counting runs
(its cache answers empty then, so nothing is refused: docs/admin/mfa-and-lockout.md, "When Redis is down").
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from rest_framework import throttling

logger = logging.getLogger(__name__)

LEASE_SHARE = 100  # a lease is at most this fraction of the rate (1 %) ...
LEASE_MOST = 100  # ... and at most this many permits
_LEASES_KEPT = 50_000  # callers with a lease in this process; past it, the leases are forgotten (the rest unspent)
_leases: dict[str, list[Any]] = {}  # the throttle's key (scope and caller) -> [(window's key, rate), permits left]
_leases_lock = threading.Lock()


def lease_size(limit: int) -> int:
    """How many permits one round trip leases for a rate of ``limit`` requests a window."""
    return max(1, min(LEASE_MOST, limit // LEASE_SHARE))


def _spend_leased(window: Window) -> bool:
    """Spend one permit of this process's lease for the window's caller; False when it holds none for this window
    at this rate (a rate changed since the lease asks Redis again)."""
    with _leases_lock:
        held = _leases.get(window.caller)
        if held is None or held[0] != (window.key, window.limit) or held[1] <= 0:
            return False
        held[1] -= 1
        return True


def _keep_leased(window: Window, permits: int) -> None:
    """Keep ``permits`` leased on ``window``, beside what this process holds there already (threads that found none
    at the same moment each leased)."""
    with _leases_lock:
        held = _leases.get(window.caller)
        if held is not None and held[0] == (window.key, window.limit):
            held[1] += permits
            return
        if len(_leases) >= _LEASES_KEPT and window.caller not in _leases:
            _leases.clear()
        _leases[window.caller] = [(window.key, window.limit), permits]


def forget_leases() -> None:
    """Drop this process's unspent permits (tests; a process that changes its rates)."""
    with _leases_lock:
        _leases.clear()


def _redis_of_cache(cache: Any) -> Any:
    try:
        from django_redis import get_redis_connection

        return get_redis_connection("default")
    except Exception:  # not a django-redis cache
        return None


@dataclass(frozen=True)
class Window:
    """Where one request counts for a throttle, for a caller that counts it in a round trip of its own (the online
    prediction path's admission script, apps/inference/online/gateway.py): the current window's counter, the rate's
    number of requests, how long the counter lives, and the seconds to wait should the window be full."""

    key: str
    limit: int
    expires: int
    retry_in: float
    caller: str = ""  # the throttle's key for the caller (its scope and who): what this process's lease is kept by


class NotWindowed(Exception):
    """This throttle cannot count in a window of Redis (no Redis cache): count it with ``allow_request``."""


class WindowedRateThrottle:
    """Mixin for a ``SimpleRateThrottle``: count requests in fixed windows of the rate's duration."""

    def _current(self, request: Any, view: Any) -> tuple[Window, Any] | None:
        """The window this request counts in and the Redis client of the cache (None when the cache is not Redis);
        None when there is nothing to count (no rate, no key)."""
        if self.rate is None:
            return None
        key = self.get_cache_key(request, view)
        if key is None:
            return None
        now = self.timer()
        window = int(now // self.duration)
        found = Window(
            f"{key}:w{window}",
            int(self.num_requests),
            int(self.duration) + 1,
            (window + 1) * self.duration - now,
            caller=key,
        )
        return found, _redis_of_cache(self.cache)

    def window_of(self, request: Any, view: Any) -> Window | None:
        """The window this request counts in (None: nothing to count, no rate or no key), for a caller that counts
        it itself: ``INCR`` the key, ``EXPIRE`` it, and refuse past the limit, as ``allow_request`` does."""
        found = self._current(request, view)
        if found is not None and found[1] is None:
            raise NotWindowed(self.scope)
        return found[0] if found is not None else None

    def allow_request(self, request: Any, view: Any) -> bool:
        found = self._current(request, view)
        if found is None:
            return True
        window, client = found
        if client is None:
            return super().allow_request(request, view)
        if _spend_leased(window):
            return True
        lease = lease_size(window.limit)
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.incrby(window.key, lease)
                pipe.expire(window.key, window.expires)
                count, _ = pipe.execute()
        except Exception as exc:  # Redis away: as the cache does then, count nothing and refuse nothing
            logger.info("Rate limit not counted (%s): %s", self.scope, exc)
            return True
        granted = min(lease, window.limit - (count - lease))  # the lease's permits within the rate
        if granted <= 0:
            self.retry_in = window.retry_in
            return False
        if granted > 1:
            _keep_leased(window, granted - 1)  # one is this request's
        return True

    def wait(self) -> float | None:
        retry_in = getattr(self, "retry_in", None)
        return super().wait() if retry_in is None else max(0.0, retry_in)


class AnonRateThrottle(WindowedRateThrottle, throttling.AnonRateThrottle):
    """Anonymous callers, per address (``anon`` rate)."""


class UserRateThrottle(WindowedRateThrottle, throttling.UserRateThrottle):
    """Signed-in callers, per user (``user`` rate)."""
