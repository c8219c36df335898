"""OpenID Connect tests run the code flow against the real oidc-provider of tests/peers/oidc_provider.py.

Providers are configured as an operator would, from an ``OIDC_PROVIDERS`` entry turned into allauth's app by
apps.accounts.oidc.config. The browser's part is played by Django's test client (the portal) and by
``OidcProvider.sign_in`` (the provider's login form); the portal's callback fetches the tokens from the provider
over real HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from django.test import Client

from apps.accounts.oidc.config import oidc_app
from tests.peers.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, oidc_provider  # noqa: F401

START = "/accounts/oidc/{provider_id}/login/"


@pytest.fixture
def use_oidc(settings, oidc_provider: OidcProvider) -> Callable[..., dict[str, Any]]:  # noqa: F811
    """Configure one OpenID Connect provider (an OIDC_PROVIDERS entry; keyword arguments override its keys)."""

    def configure(provider_id: str = "peer", *, settings_overrides: dict[str, Any] | None = None, **entry: Any):
        values = {
            "id": provider_id,
            "name": "Test IdP",
            "issuer": oidc_provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "profile", "email", "groups"],
            **entry,
        }
        app = oidc_app(values)
        app["settings"].update(settings_overrides or {})
        providers = dict(settings.SOCIALACCOUNT_PROVIDERS)
        providers["openid_connect"] = {**providers["openid_connect"], "APPS": [app]}
        settings.SOCIALACCOUNT_PROVIDERS = providers
        return app

    return configure


@pytest.fixture
def peer(use_oidc, oidc_provider: OidcProvider) -> OidcProvider:  # noqa: F811
    """The provider configured as ``peer`` with its defaults."""
    use_oidc()
    return oidc_provider


@dataclass
class Flow:
    """One sign-in through the provider: the portal client, the provider's authorize URL and its answer."""

    client: Client
    authorize_url: str
    callback_url: str = ""

    def callback(self, **replace: str | None) -> Any:
        """Open the callback the provider sent (query parameters replaced or, with None, removed)."""
        parts = urlsplit(self.callback_url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        for key, value in replace.items():
            if value is None:
                query.pop(key, None)
            else:
                query[key] = value
        return self.client.get(parts.path, query)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.callback_url).query).items()}


def start(provider_id: str = "peer", client: Client | None = None) -> tuple[Flow, Any]:
    """POST the provider's button on the sign-in page; the flow and the portal's answer."""
    client = client or Client()
    response = client.post(START.format(provider_id=provider_id))
    return Flow(client=client, authorize_url=response.get("Location", "")), response


def sign_in_through(provider: OidcProvider, account: str, provider_id: str = "peer") -> tuple[Flow, Any]:
    """The whole flow: start at the portal, sign in at the provider as ``account``, open the portal's callback."""
    flow, response = start(provider_id)
    assert response.status_code == 302, response.content[:2000]
    flow.callback_url = provider.sign_in(flow.authorize_url, account)
    return flow, flow.callback()


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode(params)))
