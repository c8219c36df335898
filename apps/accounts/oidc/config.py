"""OpenID Connect providers and GitHub / GitLab apps from the environment (docs/admin/sso-oidc.md).

``OIDC_PROVIDERS`` (or the file ``OIDC_PROVIDERS_FILE``) is a JSON list, one object per provider::

    [{"id": "okta", "name": "Okta", "preset": "okta", "issuer": "https://corp.okta.com/oauth2/default",
      "client_id": "0oa1...", "client_secret_file": "/run/secrets/okta", "claims": {"groups": "groups"}}]

``preset`` fills in the scopes and claim names of a known provider (PRESETS); every key set overrides it.
GitHub and GitLab are enabled by ``GITHUB_CLIENT_ID`` / ``GITHUB_CLIENT_SECRET`` and ``GITLAB_CLIENT_ID`` /
``GITLAB_CLIENT_SECRET`` (``GITLAB_URL`` for a self-hosted GitLab). Providers may also be added in the Django
admin (Social accounts › Social applications) with the same settings as JSON.

Imported by gpux_portal/settings.py: standard library and ImproperlyConfigured only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# Claim names of the portal's fields, by default (standard OpenID Connect claims).
DEFAULT_CLAIMS = {
    "uid": "sub",
    "email": "email",
    "email_verified": "email_verified",
    "name": "name",
    "username": "preferred_username",
    "groups": "groups",
}

PRESETS: dict[str, dict[str, Any]] = {
    # Okta: add a "groups" claim to the authorization server (Security › API › Claims) to map groups.
    "okta": {"scopes": ["openid", "profile", "email", "groups"]},
    # Entra ID: no email_verified claim. An address is trusted only for verified_email_domains (domains verified in
    # the tenant); "tid" pins the tenant. "groups" holds group object IDs (token configuration › groups claim).
    "entra-id": {"scopes": ["openid", "profile", "email"], "claims": {"email_verified": ""}},
    # Google Workspace: "hd" is the Workspace domain (pin it with required_claims); Google sends no groups claim.
    "google-workspace": {"scopes": ["openid", "profile", "email"], "claims": {"groups": ""}},
    # Keycloak: a "Group Membership" mapper (full group path off) on the client scope puts groups in "groups".
    "keycloak": {"scopes": ["openid", "profile", "email"]},
    # Auth0: groups or roles only through an Action that adds a namespaced claim, e.g. https://gpux.example/groups.
    "auth0": {"scopes": ["openid", "profile", "email"], "claims": {"groups": "https://gpux.example/groups"}},
    "generic": {"scopes": ["openid", "profile", "email"]},
}

PROVIDER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
KNOWN_KEYS = {
    "id",
    "name",
    "preset",
    "issuer",
    "discovery_url",
    "client_id",
    "client_secret",
    "client_secret_file",
    "scopes",
    "claims",
    "verified_email_domains",
    "required_claims",
    "token_auth_method",
}


def _secret(entry: Mapping[str, Any], where: str) -> str:
    if entry.get("client_secret"):
        return str(entry["client_secret"])
    path = entry.get("client_secret_file")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{where}: client_secret_file {path!r} cannot be read: {exc.strerror}") from exc
    raise ImproperlyConfigured(f"{where}: set client_secret or client_secret_file")


def oidc_app(entry: Mapping[str, Any], where: str = "OIDC_PROVIDERS") -> dict[str, Any]:
    """One allauth app (for ``SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"]``) from one provider entry."""
    if not isinstance(entry, Mapping):
        raise ImproperlyConfigured(f"{where}: each provider is a JSON object, got {entry!r}")
    provider_id = str(entry.get("id") or "")
    where = f"{where} “{provider_id or '?'}”"
    if not PROVIDER_ID.match(provider_id):
        raise ImproperlyConfigured(f"{where}: id must be 1-40 lowercase letters, digits and hyphens (it is in the URL)")
    unknown = sorted(set(entry) - KNOWN_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(KNOWN_KEYS))})"
        )
    preset_name = entry.get("preset") or "generic"
    if preset_name not in PRESETS:
        raise ImproperlyConfigured(f"{where}: preset must be one of {', '.join(PRESETS)}, got {preset_name!r}")
    preset = PRESETS[preset_name]
    issuer = str(entry.get("issuer") or "")
    if not issuer.startswith(("https://", "http://")):
        raise ImproperlyConfigured(f"{where}: issuer must be the provider's https:// issuer URL, got {issuer!r}")
    if not entry.get("client_id"):
        raise ImproperlyConfigured(f"{where}: set client_id")
    claims = {**DEFAULT_CLAIMS, **preset.get("claims", {}), **(entry.get("claims") or {})}
    unknown_claims = sorted(set(claims) - set(DEFAULT_CLAIMS))
    if unknown_claims:
        raise ImproperlyConfigured(
            f"{where}: claims may map {', '.join(DEFAULT_CLAIMS)}, not {', '.join(unknown_claims)}"
        )
    discovery_url = str(entry.get("discovery_url") or issuer)
    settings: dict[str, Any] = {
        # Where the discovery document is (issuer + /.well-known/openid-configuration unless said otherwise).
        "server_url": discovery_url,
        "issuer": issuer,
        "scope": list(entry.get("scopes") or preset["scopes"]),
        "claims": claims,
        "oauth_pkce_enabled": True,
        "preset": preset_name,
    }
    if entry.get("verified_email_domains"):
        settings["verified_email"] = [str(d).lower() for d in entry["verified_email_domains"]]
    if entry.get("required_claims"):
        settings["required_claims"] = dict(entry["required_claims"])
    if entry.get("token_auth_method"):
        settings["token_auth_method"] = entry["token_auth_method"]
    return {
        "provider_id": provider_id,
        "name": str(entry.get("name") or provider_id),
        "client_id": str(entry["client_id"]),
        "secret": _secret(entry, where),
        "settings": settings,
    }


def oidc_apps(environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """The apps of ``OIDC_PROVIDERS`` / ``OIDC_PROVIDERS_FILE``, checked (ids unique)."""
    raw = environ.get("OIDC_PROVIDERS")
    where = "OIDC_PROVIDERS"
    if not raw and environ.get("OIDC_PROVIDERS_FILE"):
        where = "OIDC_PROVIDERS_FILE"
        try:
            raw = Path(environ["OIDC_PROVIDERS_FILE"]).read_text()
        except OSError as exc:
            raise ImproperlyConfigured(f"OIDC_PROVIDERS_FILE cannot be read: {exc.strerror}") from exc
    if not raw or not raw.strip():
        return []
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(entries, list):
        raise ImproperlyConfigured(f"{where} must be a JSON list of providers")
    apps = [oidc_app(entry, where) for entry in entries]
    ids = [app["provider_id"] for app in apps]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ImproperlyConfigured(f"{where}: provider ids must be unique: {', '.join(duplicates)}")
    return apps


def oauth_apps(environ: Mapping[str, str], prefix: str) -> list[dict[str, Any]]:
    """A GitHub or GitLab app from ``<PREFIX>_CLIENT_ID`` / ``<PREFIX>_CLIENT_SECRET`` (``_FILE``), if set."""
    client_id = environ.get(f"{prefix}_CLIENT_ID")
    if not client_id:
        return []
    secret = environ.get(f"{prefix}_CLIENT_SECRET")
    if not secret and environ.get(f"{prefix}_CLIENT_SECRET_FILE"):
        secret = _secret(
            {"client_secret_file": environ[f"{prefix}_CLIENT_SECRET_FILE"]}, f"{prefix}_CLIENT_SECRET_FILE"
        )
    if not secret:
        raise ImproperlyConfigured(
            f"{prefix}_CLIENT_ID is set: set {prefix}_CLIENT_SECRET (or {prefix}_CLIENT_SECRET_FILE)"
        )
    app: dict[str, Any] = {"client_id": client_id, "secret": secret, "settings": {"oauth_pkce_enabled": True}}
    if prefix == "GITLAB" and environ.get("GITLAB_URL"):
        app["settings"]["gitlab_url"] = environ["GITLAB_URL"].rstrip("/")
    return [app]


def socialaccount_providers(environ: Mapping[str, str]) -> dict[str, Any]:
    """``SOCIALACCOUNT_PROVIDERS``: the hardened OpenID Connect class, and the apps configured in ``environ``."""
    return {
        "openid_connect": {
            "provider_class": "apps.accounts.oidc.provider.PortalOpenIDConnectProvider",
            "OAUTH_PKCE_ENABLED": True,
            "APPS": oidc_apps(environ),
        },
        # GitHub tells which addresses are verified; read:user and user:email let the portal see them.
        "github": {"SCOPE": ["read:user", "user:email"], "APPS": oauth_apps(environ, "GITHUB")},
        "gitlab": {"SCOPE": ["read_user"], "APPS": oauth_apps(environ, "GITLAB")},
    }
