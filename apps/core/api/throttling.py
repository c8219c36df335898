"""The API's rate limits: DRF's throttles, counted in fixed windows with one Redis round trip per request.

DRF's ``SimpleRateThrottle`` keeps a list of every request's time in the cache, reads it, prunes it and writes it
back: two round trips and a pickle that grows with the rate (6,000 floats for "6000/minute" at full use). Here a
request increments the counter of the current window (``INCR`` and ``EXPIRE`` in one pipeline); over the rate it
answers 429 with ``Retry-After`` the seconds left in the window. A fixed window lets a client send up to twice the
rate across a window's edge, which is what a rate limit of this kind is for: keeping a client's volume in bounds.

Without a Redis cache (the embedded ``make run``) and while Redis does not answer, DRF's own counting runs
(its cache answers empty then, so nothing is refused: docs/admin/mfa-and-lockout.md, "When Redis is down").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rest_framework import throttling

logger = logging.getLogger(__name__)


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
            f"{key}:w{window}", int(self.num_requests), int(self.duration) + 1, (window + 1) * self.duration - now
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
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.incr(window.key)
                pipe.expire(window.key, window.expires)
                count, _ = pipe.execute()
        except Exception as exc:  # Redis away: as the cache does then, count nothing and refuse nothing
            logger.info("Rate limit not counted (%s): %s", self.scope, exc)
            return True
        if count > window.limit:
            self.retry_in = window.retry_in
            return False
        return True

    def wait(self) -> float | None:
        retry_in = getattr(self, "retry_in", None)
        return super().wait() if retry_in is None else max(0.0, retry_in)


class AnonRateThrottle(WindowedRateThrottle, throttling.AnonRateThrottle):
    """Anonymous callers, per address (``anon`` rate)."""


class UserRateThrottle(WindowedRateThrottle, throttling.UserRateThrottle):
    """Signed-in callers, per user (``user`` rate)."""
