"""``Authorization: Bearer <token>`` for the API. ``request.auth`` is the ApiToken.

A token that checked out is remembered by this process for at most ``SHORT_LIVED_CACHE_SECONDS``
(apps/core/shortlived.py): the next calls with it within that time read neither the database nor the failed-token
throttle. Each call still gets its own ``User`` and ``ApiToken`` objects, and the token's expiry and the user's
``is_active`` are checked on every call; a revocation, a deactivation or any saved change to the token or its user
clears the cache (here at once, in other processes through the invalidation they listen for, at worst within the
bound). An address over its rate of failed tokens may still use a token it presented successfully within that
bound: it is not guessing. When the entry expires under load, one thread looks the token up again and the process's
other requests with it wait for that (``ShortLivedCache.get_or_compute``).
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.db.models.base import ModelState
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.accounts.lockout import FailedTokenThrottle
from apps.accounts.models import ApiToken, hash_token_secret
from apps.audit.context import client_ip
from apps.core import shortlived

_checked_tokens = shortlived.ShortLivedCache("api-tokens")


def _copy(instance: Any) -> Any:
    """A fresh instance with the same field values (no shared related-object cache or state)."""
    copied = instance.__class__.__new__(instance.__class__)
    copied.__dict__ = {**instance.__dict__, "_state": ModelState()}
    copied._state.db, copied._state.adding = instance._state.db, False
    return copied


def _copies(token: ApiToken) -> ApiToken:
    fresh = _copy(token)
    fresh.user = _copy(token.user)
    if token.organization_id is not None:
        fresh.organization = _copy(token.organization)
    return fresh


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected “Bearer <token>”.", code="malformed_token"
            )
        return self.authenticate_token(parts[1], request)

    def authenticate_token(self, raw: str, request):
        digest = hash_token_secret(raw)
        # On a miss, one thread of the process looks the token up; others with the same token wait for it.
        known = _checked_tokens.get_or_compute(digest, lambda: self.look_up(raw, digest, request))
        return self._use(known, request)

    def authenticate_known(self, raw: str, request) -> tuple[Any, ApiToken] | None:
        """``authenticate_token``'s answer when this process checked the token within the bound and it is still
        usable; else None, having read nothing and counted nothing (``authenticate`` then decides, as always)."""
        known = _checked_tokens.get(hash_token_secret(raw))
        if known is shortlived.MISSING:
            return None
        try:
            return self._use(known, request)
        except exceptions.AuthenticationFailed:
            return None

    def _use(self, known: ApiToken, request) -> tuple[Any, ApiToken]:
        """The request's own copies of a checked token and its user, once they pass ``check_usable``; its use
        recorded."""
        token = _copies(known)
        self.check_usable(token)
        token.touch(client_ip(request))
        known.last_used_at = token.last_used_at
        return token.user, token

    def look_up(self, raw: str, digest: str, request) -> ApiToken:
        """The token ``raw`` names, with its user and organization, if its secret matches and it may be used; else
        ``AuthenticationFailed`` (counted against the address by the failed-token throttle)."""
        # Failed attempts are throttled per IP here: DRF's throttles only run after authentication succeeded.
        guard = FailedTokenThrottle()
        wait = guard.blocked_for(request)
        if wait is not None:
            raise exceptions.Throttled(wait, detail="Too many invalid tokens from this address; try again later.")
        prefix = settings.API_TOKEN_PREFIX
        if not raw.startswith(prefix) or raw.count("_") < 2:
            guard.record_failure(request)
            raise exceptions.AuthenticationFailed("Invalid token.", code="invalid_token")
        visible = raw[len(prefix) :].split("_", 1)[0]
        token = ApiToken.objects.select_related("user", "organization").filter(prefix=visible).first()
        if token is None or not hmac.compare_digest(token.secret_hash, digest):
            guard.record_failure(request)
            raise exceptions.AuthenticationFailed("Invalid token.", code="invalid_token")
        self.check_usable(token)  # a token refused is not kept
        return _copies(token)

    @staticmethod
    def check_usable(token: ApiToken) -> None:
        if token.status == "revoked":
            raise exceptions.AuthenticationFailed("This token has been revoked.", code="token_revoked")
        if token.status == "expired":
            raise exceptions.AuthenticationFailed("This token has expired.", code="token_expired")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is disabled.", code="user_inactive")

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes the Bearer token to drf-spectacular (OpenAPI ``securitySchemes``)."""

    target_class = "apps.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token made under /settings/tokens/ or POST /api/v1/user/tokens/: "
            "`Authorization: Bearer gpux_<prefix>_<secret>`.",
        }
