"""Signing in through an OpenID Connect provider in headless Chromium: the sign-in page's "Continue with" button,
allauth's confirmation, the real oidc-provider's login form (tests/peers/oidc_provider.py), the code flow with PKCE
back to the portal, and the person signed in with a new account. Screenshots go to ``test-artifacts/e2e/``.

The provider only redirects to callbacks registered with it, so this test starts its own provider whose client
knows the live server's callback (the session-scoped one knows Django's test client's).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.oidc.config import oidc_app
from tests.peers.oidc_provider import CLIENT_ID, CLIENT_SECRET, start_oidc_provider, stop_oidc_provider

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider_for(live_server, settings):
    base = live_server.url.replace("localhost", "127.0.0.1")
    provider = start_oidc_provider(redirect_uris=[f"{base}/accounts/oidc/corp/login/callback/"])
    app = oidc_app(
        {
            "id": "corp",
            "name": "Corp SSO",
            "issuer": provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    )
    settings.SOCIALACCOUNT_PROVIDERS = {
        **settings.SOCIALACCOUNT_PROVIDERS,
        "openid_connect": {**settings.SOCIALACCOUNT_PROVIDERS["openid_connect"], "APPS": [app]},
    }
    yield base, provider
    stop_oidc_provider(provider)


def test_a_person_signs_in_with_the_corporate_identity_provider_and_gets_an_account(provider_for, page, screenshot):
    base, provider = provider_for

    page.goto(f"{base}/accounts/login/")
    screenshot(page, "login-page")
    page.get_by_role("link", name="Continue with Corp SSO").click()
    screenshot(page, "confirm")
    with page.expect_navigation(url=lambda url: url.startswith(provider.issuer)):
        page.get_by_role("button", name="Continue").click()
    page.fill("input[name=login]", "ada")
    page.fill("input[name=password]", "any password")
    screenshot(page, "provider-sign-in-form")
    with page.expect_navigation(url=f"{base}/"):
        page.get_by_role("button", name="Sign-in").click()
    screenshot(page, "signed-in")

    ada = get_user_model().objects.get(email="ada@idp.example")
    assert ada.handle == "ada-lovelace"
    page.goto(f"{base}/settings/profile/")
    assert page.url == f"{base}/settings/profile/"  # signed in: not sent to the sign-in page
    assert "ada-lovelace" in page.content()
    screenshot(page, "profile")
