"""``Authorization: Bearer <token>`` for the API. ``request.auth`` is the ApiToken."""

from __future__ import annotations

import hmac

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.accounts.lockout import FailedTokenThrottle
from apps.accounts.models import ApiToken, hash_token_secret
from apps.audit.context import client_ip


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
        if token is None or not hmac.compare_digest(token.secret_hash, hash_token_secret(raw)):
            guard.record_failure(request)
            raise exceptions.AuthenticationFailed("Invalid token.", code="invalid_token")
        if token.status == "revoked":
            raise exceptions.AuthenticationFailed("This token has been revoked.", code="token_revoked")
        if token.status == "expired":
            raise exceptions.AuthenticationFailed("This token has expired.", code="token_expired")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is disabled.", code="user_inactive")
        token.touch(client_ip(request))
        return token.user, token

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
