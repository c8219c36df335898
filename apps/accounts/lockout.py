"""Against password and token guessing.

* Passwords: django-axes locks an (account, IP) pair out after AXES_FAILURE_LIMIT failed sign-ins, on the
  web form and anywhere else ``authenticate()`` runs. allauth hands ``authenticate()`` the address under
  ``email`` (not the form field's name ``login``), so axes is told where to find it.
* API tokens are 256-bit random secrets, so they cannot be guessed; still, failed Bearer attempts are
  throttled per client IP (``failed_token`` rate), because DRF's own throttles run only after
  authentication succeeded and would never see them.

When Redis (the cache) is down (docs/admin/mfa-and-lockout.md, "When Redis is down"): the cache answers empty and
drops writes, so reads and API calls keep working and the failed-token count is not kept (tokens cannot be guessed
anyway); sign-in fails safe: allauth's per-account and per-address limits and the single use of an authenticator
code live in the cache, so the sign-in forms answer 503 with ``Retry-After`` until it is back
(``SignInNeedsCacheMiddleware``). axes keeps its lockouts in the database, unaffected. Signed-in sessions continue.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str | None:
    """The account a sign-in attempt names: allauth's ``email``/``username`` credential or the form's ``login``."""
    name = None
    if credentials:
        name = credentials.get("email") or credentials.get("username") or credentials.get("login")
    if not name and request is not None:
        data = getattr(request, "data", None) or getattr(request, "POST", {})
        name = data.get("login") or data.get("email") or data.get("username")
    return name.strip().lower() if isinstance(name, str) else name


class FailedTokenThrottle(SimpleRateThrottle):
    """Counts failed Bearer token attempts per client IP; once over the rate, even a valid token waits."""

    scope = "failed_token"

    def get_cache_key(self, request: Any, view: Any = None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request: Any) -> None:
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]

    def blocked_for(self, request: Any) -> float | None:
        """Seconds to wait when this IP has used up its failures, else None (records nothing)."""
        self._load(request)
        if len(self.history) >= self.num_requests:
            return self.wait()
        return None

    def record_failure(self, request: Any) -> None:
        self._load(request)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


def cache_answers() -> bool:
    """Whether the cache's Redis answers now (always True for a cache that is not on Redis: the embedded mode)."""
    from django_redis import get_redis_connection

    try:
        return bool(get_redis_connection("default").ping())
    except NotImplementedError:  # not a django-redis cache
        return True
    except Exception as exc:
        logger.warning("The cache does not answer: %s", exc)
        return False


class SignInNeedsCacheMiddleware:
    """Sign-in fails safe while the cache is down: a POST to an allauth view (sign-in, its MFA step, sign-up,
    re-authentication, password reset) answers 503 with ``Retry-After`` instead of running without the limits
    and the one-time-code check that the cache holds. Anything else, signed-in sessions included, goes on."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if request.method != "POST" or not getattr(view_func, "__module__", "").startswith("allauth."):
            return None
        if cache_answers():
            return None
        from apps.core.job_services import retry_after_seconds

        wait = retry_after_seconds()
        page = render_to_string("account/sign_in_paused.html", {"retry_after": wait}, request=request)
        response = HttpResponse(page, status=503)
        response["Retry-After"] = str(wait)
        return response
