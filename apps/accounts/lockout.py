"""Against password and token guessing.

* Passwords: django-axes locks an (account, IP) pair out after AXES_FAILURE_LIMIT failed sign-ins, on the
  web form and anywhere else ``authenticate()`` runs. allauth hands ``authenticate()`` the address under
  ``email`` (not the form field's name ``login``), so axes is told where to find it.
* API tokens are 256-bit random secrets, so they cannot be guessed; still, failed Bearer attempts are
  throttled per client IP (``failed_token`` rate), because DRF's own throttles run only after
  authentication succeeded and would never see them.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle


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
