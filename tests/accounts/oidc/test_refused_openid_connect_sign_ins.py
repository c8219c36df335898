"""What the portal refuses from an OpenID Connect provider, each case made real at the provider or in the browser's
part of the flow: a wrong issuer, a bad signature, an expired ID token, a reused code and a mismatched state.

A refused sign-in answers allauth's error page (401), signs nobody in, creates nobody, and is recorded for operators
(``auth.sso_failed`` with the reason).
"""

from __future__ import annotations

import pytest
from allauth.socialaccount.models import SocialAccount
from django.test import Client

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.accounts.oidc.conftest import sign_in_through, signed_in_user_id, start
from tests.peers.oidc_provider import EXPIRED_CLIENT_ID

pytestmark = pytest.mark.django_db


def assert_refused(flow_client: Client, response, reason: str) -> None:
    assert response.status_code == 401, response.content[:2000]
    assert b"Third-Party Login Failure" in response.content or b"login failure" in response.content.lower()
    assert signed_in_user_id(flow_client) is None
    assert not User.objects.filter(email="ada@idp.example").exists()
    assert not SocialAccount.objects.exists()
    reasons = [e.metadata["reason"] for e in AuditEvent.objects.filter(action="auth.sso_failed")]
    assert any(reason in r for r in reasons), reasons


def test_a_provider_that_announces_another_issuer_than_the_configured_one_is_refused(use_oidc, oidc_provider):
    # The operator configured http://localhost:<port>; the same server announces http://127.0.0.1:<port>.
    use_oidc(issuer=oidc_provider.issuer.replace("127.0.0.1", "localhost"))
    flow, response = start()
    assert not response.get("Location", "").startswith(oidc_provider.issuer)  # never sent to the provider
    assert_refused(flow.client, response, "announces the issuer")


def test_an_id_token_from_another_issuer_is_refused(use_oidc, oidc_provider):
    other = f"{oidc_provider.issuer}/other-tenant"
    # Discovery (overridden) and configuration agree on another issuer than the one that signs the tokens.
    use_oidc(
        issuer=other,
        discovery_url=oidc_provider.issuer,
        settings_overrides={"openid_configuration_overrides": {"issuer": other}},
    )
    flow, response = start()
    flow.callback_url = oidc_provider.sign_in(flow.authorize_url, "ada")
    response = flow.callback(iss=None)  # without the callback's own issuer, the ID token's is what is checked
    assert_refused(flow.client, response, "Invalid id_token")


def test_a_callback_that_names_another_issuer_is_refused(peer):
    flow, _ = start()
    flow.callback_url = peer.sign_in(flow.authorize_url, "ada")
    response = flow.callback(iss="https://evil.example")  # RFC 9207: an authorization server mix-up
    assert_refused(flow.client, response, "callback names the issuer")


def test_an_id_token_whose_signature_does_not_verify_is_refused(use_oidc, oidc_provider):
    # The key set the portal is told to use has the provider's key id but another key.
    use_oidc(settings_overrides={"openid_configuration_overrides": {"jwks_uri": oidc_provider.wrong_jwks_uri}})
    flow, response = sign_in_through(oidc_provider, "ada")
    assert_refused(flow.client, response, "Invalid id_token")


def test_an_expired_id_token_is_refused(use_oidc, oidc_provider):
    # This client of the provider gets ID tokens that expired an hour ago.
    use_oidc("peer-expired", client_id=EXPIRED_CLIENT_ID)
    flow, response = sign_in_through(oidc_provider, "ada", provider_id="peer-expired")
    assert_refused(flow.client, response, "Invalid id_token")


def test_a_code_used_once_is_refused_the_second_time_even_with_its_state_and_verifier(peer):
    flow, _ = start()
    flow.callback_url = peer.sign_in(flow.authorize_url, "ada")
    states = dict(flow.client.session["socialaccount_states"])  # the state, with the PKCE verifier
    assert flow.callback().status_code == 302  # the first use signs Ada in

    replay = Client()
    session = replay.session
    session["socialaccount_states"] = states
    session.save()
    replay.cookies["sessionid"] = session.session_key
    User.objects.all().delete()  # so that assert_refused sees no account made by the replay
    flow.client = replay
    response = flow.callback()
    assert_refused(replay, response, "invalid_grant")


def test_a_callback_whose_state_is_not_the_one_the_portal_sent_is_refused(peer):
    flow, _ = start()
    flow.callback_url = peer.sign_in(flow.authorize_url, "ada")
    response = flow.callback(state="x" * 16)
    assert response.status_code == 401
    assert signed_in_user_id(flow.client) is None
    assert not User.objects.filter(email="ada@idp.example").exists()


def test_a_callback_in_another_browser_than_the_one_that_started_is_refused(peer):
    flow, _ = start()
    flow.callback_url = peer.sign_in(flow.authorize_url, "ada")
    flow.client = Client()  # the state lives in the session of the browser that started the sign-in
    response = flow.callback()
    assert response.status_code == 401
    assert signed_in_user_id(flow.client) is None


def test_an_unknown_provider_is_404(peer):
    assert Client().post("/accounts/oidc/nobody/login/").status_code == 404
    assert Client().get("/accounts/oidc/nobody/login/callback/", {"code": "x", "state": "y"}).status_code == 404
