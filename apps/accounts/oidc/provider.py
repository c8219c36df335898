"""The portal's OpenID Connect provider: allauth's, with the checks a sign-in through it must not skip.

On top of allauth's ``openid_connect`` provider:

* **the issuer**: the discovery document must announce the issuer the operator configured (``issuer``, else
  ``server_url``); a callback that names another issuer (RFC 9207 ``iss``) is refused; the ID token's ``iss`` must
  be that issuer (allauth checks the token against the discovery document);
* **the signature**: the ID token's signature is always verified against the provider's published keys, with an
  asymmetric algorithm only. allauth skips the check when it fetched the token itself ("TLS is enough", allowed by
  the specification), which would accept a token signed by anyone;
* **PKCE** (S256) is on unless an app turns it off;
* **claims**: which claim holds the uid, address, verification flag, name, handle and groups is the app's
  ``claims`` setting (config.py); ``required_claims`` must match exactly (e.g. Google Workspace's ``hd``, Entra ID's
  ``tid``); a missing uid is an error the person sees, never a crash.

Expired tokens (``exp``), the audience (``aud`` is the client id), the state and the one-time code are checked by
allauth, pyjwt and the provider, as before.
"""

from __future__ import annotations

from typing import Any

import jwt
from allauth.account.models import EmailAddress
from allauth.core.internal.datakit import parse_bool_safely
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from requests import RequestException

from apps.accounts.oidc.config import DEFAULT_CLAIMS

# Asymmetric algorithms only: an HMAC "signature" keyed with the client secret, or "none", proves nothing here.
SIGNING_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})


def claims_of(data: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims with userinfo's over them: some providers put a claim in one only (Auth0's custom
    claims are in the ID token, Okta's groups may be in either)."""
    if "id_token" in data or "userinfo" in data:
        return {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}
    return dict(data)


def _same_issuer(a: str, b: str) -> bool:
    # Auth0 announces "https://tenant.auth0.com/" for "https://tenant.auth0.com": a trailing slash is no other issuer.
    return a.rstrip("/") == b.rstrip("/")


class PortalOpenIDConnectAdapter(OpenIDConnectOAuth2Adapter):
    """allauth's adapter, checking the issuer of the discovery document and always verifying ID token signatures."""

    @property
    def expected_issuer(self) -> str:
        app = self.get_provider().app
        return str(app.settings.get("issuer") or app.settings["server_url"]).split("/.well-known/", 1)[0]

    @property
    def openid_config(self) -> dict[str, Any]:
        if not hasattr(self, "_openid_config"):
            try:
                config = super().openid_config
            except (RequestException, ValueError) as exc:
                raise OAuth2Error(f"the provider's discovery document could not be read: {exc}") from exc
            announced = str(config.get("issuer") or "")
            if not _same_issuer(announced, self.expected_issuer):
                del self._openid_config
                raise OAuth2Error(
                    f"the provider announces the issuer “{announced}”, not the configured “{self.expected_issuer}”"
                )
        return self._openid_config

    def _decode_id_token(self, app: Any, id_token: str) -> dict[str, Any]:
        try:
            algorithm = jwt.get_unverified_header(id_token).get("alg")
        except jwt.PyJWTError as exc:
            raise OAuth2Error("the ID token is not a JWT") from exc
        if algorithm not in SIGNING_ALGORITHMS:
            raise OAuth2Error(f"the ID token is signed with {algorithm!r}, not an asymmetric algorithm")
        try:
            return jwtkit.verify_and_decode(
                credential=id_token,
                keys_url=self.openid_config["jwks_uri"],
                issuer=self.openid_config["issuer"],
                audience=app.client_id,
                lookup_kid=jwtkit.lookup_kid_jwk,
                verify_signature=True,
            )
        except (KeyError, ValueError, TypeError, RequestException) as exc:
            raise OAuth2Error(f"the ID token could not be verified: {exc!r}") from exc

    def complete_login(self, request: Any, app: Any, token: Any, **kwargs: Any) -> Any:
        announced = request.GET.get("iss")
        if announced is not None and not _same_issuer(announced, self.openid_config["issuer"]):
            raise OAuth2Error(f"the callback names the issuer “{announced}”, not “{self.openid_config['issuer']}”")
        if not (kwargs.get("response") or {}).get("id_token"):
            raise OAuth2Error("the provider answered without an ID token (is the “openid” scope requested?)")
        return super().complete_login(request, app, token, **kwargs)


class PortalOpenIDConnectProvider(OpenIDConnectProvider):
    """allauth's OpenID Connect provider with the portal's adapter, PKCE on, and configurable claims."""

    package = "apps.accounts.oidc"
    oauth2_adapter_class = PortalOpenIDConnectAdapter
    pkce_enabled_default = True

    def claim(self, field: str) -> str:
        """The claim that holds the portal's ``field`` ("" when the provider has none)."""
        return str({**DEFAULT_CLAIMS, **self.app.settings.get("claims", {})}.get(field) or "")

    def groups_of(self, data: dict[str, Any]) -> list[str] | None:
        """The groups claim as a list of strings; None when the provider sent no such claim."""
        name = self.claim("groups")
        picked = claims_of(data)
        if not name or name not in picked:
            return None
        value = picked[name]
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(v) for v in value if isinstance(v, str | int)]
        return []

    def _check_required_claims(self, data: dict[str, Any]) -> None:
        claims = claims_of(data)
        for name, wanted in (self.app.settings.get("required_claims") or {}).items():
            if str(claims.get(name)) != str(wanted):
                raise OAuth2Error(
                    f"the claim “{name}” is {claims.get(name)!r}, not {wanted!r}: this sign-in is refused"
                )

    def sociallogin_from_response(self, request: Any, response: Any) -> Any:
        self._check_required_claims(response)
        return super().sociallogin_from_response(request, response)

    def extract_uid(self, data: dict[str, Any]) -> str:
        value = claims_of(data).get(self.app.settings.get("uid_field") or self.claim("uid"))
        if value in (None, ""):
            raise OAuth2Error(f"the provider sent no “{self.claim('uid')}” claim to identify the person")
        return str(value)

    def extract_common_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        picked = claims_of(data)
        fields = super().extract_common_fields(data)
        fields.update(
            email=picked.get(self.claim("email")) if self.claim("email") else None,
            username=picked.get(self.claim("username")) if self.claim("username") else None,
            name=picked.get(self.claim("name")) if self.claim("name") else None,
        )
        return fields

    def extract_email_addresses(self, data: dict[str, Any]) -> list[EmailAddress]:
        picked = claims_of(data)
        email = picked.get(self.claim("email")) if self.claim("email") else None
        if not email:
            return []
        flag = self.claim("email_verified")
        verified = parse_bool_safely(picked.get(flag)) if flag else False
        return [EmailAddress(email=email, verified=verified, primary=True)]


provider_classes = [PortalOpenIDConnectProvider]
