"""The authorization code flow with PKCE, end to end, against a real OpenID Connect provider (oidc-provider)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.test import Client

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.core.access import Role
from apps.organizations.models import GroupMapping, Membership
from tests.accounts.oidc.conftest import sign_in_through, signed_in_user_id, start
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_sign_in_page_shows_the_provider_button(peer):
    page = Client().get("/accounts/login/")
    assert page.status_code == 200
    assert b"Test IdP" in page.content
    assert b"/accounts/oidc/peer/login/" in page.content


def test_the_portal_sends_the_browser_to_the_provider_with_pkce_and_a_state(peer):
    flow, response = start()
    assert response.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(flow.authorize_url).query).items()}
    assert flow.authorize_url.startswith(f"{peer.issuer}/auth?")
    assert query["client_id"] == "portal"
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) >= 43
    assert len(query["state"]) >= 16
    assert query["redirect_uri"] == "http://testserver/accounts/oidc/peer/login/callback/"


def test_a_new_person_signs_in_through_the_provider_and_gets_an_account(peer):
    flow, response = sign_in_through(peer, "ada")

    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get(email="ada@idp.example")
    assert signed_in_user_id(flow.client) == str(user.pk)
    assert user.handle == "ada-lovelace"  # preferred_username "ada.lovelace", made a valid handle
    assert user.name == "Ada Lovelace"
    assert not user.has_usable_password()
    assert EmailAddress.objects.get(user=user).verified  # email_verified: true
    assert user.personal_organization.slug == "ada-lovelace"
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == ("peer", "ada")


def test_the_same_person_signing_in_again_gets_the_same_account(peer):
    sign_in_through(peer, "ada")
    flow, _ = sign_in_through(peer, "ada")
    assert signed_in_user_id(flow.client) == str(User.objects.get(email="ada@idp.example").pk)
    assert User.objects.filter(email="ada@idp.example").count() == 1


def test_a_verified_address_links_the_sign_in_to_the_existing_account(peer):
    existing = UserFactory(email="victim@idp.example", handle="victor")
    flow, response = sign_in_through(peer, "victim")
    assert response.status_code == 302
    assert signed_in_user_id(flow.client) == str(existing.pk)
    assert SocialAccount.objects.get(uid="victim").user == existing


def test_an_unverified_address_never_signs_in_to_the_existing_account(peer):
    existing = UserFactory(email="victim@idp.example", handle="victor")
    flow, response = sign_in_through(peer, "mallory")  # claims victim@idp.example, email_verified: false

    assert signed_in_user_id(flow.client) is None
    assert not SocialAccount.objects.filter(user=existing).exists()
    assert User.objects.filter(email__iexact="victim@idp.example").count() == 1
    # allauth does not reveal that the address has an account: it answers as if it had sent a verification mail
    # (and mails the address's owner that someone tried to sign up with it).
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"


def test_a_preferred_username_that_is_no_valid_handle_is_made_one(peer):
    sign_in_through(peer, "odd")  # "Ödön Ödd!!"
    assert User.objects.get(email="odd@idp.example").handle == "odon-odd"


def test_a_taken_handle_is_made_from_the_name_and_else_gets_a_number(peer):
    UserFactory(handle="grace", email="another-grace@example.com")
    sign_in_through(peer, "grace")  # preferred_username "grace", name "Grace Hopper"
    assert User.objects.get(email="grace@idp.example").handle == "grace-hopper"

    User.objects.get(email="grace@idp.example").delete()
    UserFactory(handle="grace-hopper", email="another-hopper@example.com")
    sign_in_through(peer, "grace")
    assert User.objects.get(email="grace@idp.example").handle == "grace-2"


def test_the_groups_claim_decides_roles_in_mapped_organizations_at_each_sign_in(peer):
    org = OrganizationFactory(slug="acme")
    MembershipFactory(organization=org, role=Role.OWNER)
    GroupMapping.objects.create(source="oidc:peer", group="ml-engineers", organization=org, role=Role.MEMBER)
    GroupMapping.objects.create(source="oidc:peer", group="ml-leads", organization=org, role=Role.ADMIN)
    sign_in_through(peer, "grace")  # groups: ml-leads, ml-engineers
    sign_in_through(peer, "ada")  # groups: ml-engineers
    roles = dict(Membership.objects.filter(organization=org, managed_by="oidc:peer").values_list("user__email", "role"))
    assert roles == {"grace@idp.example": Role.ADMIN, "ada@idp.example": Role.MEMBER}


def test_a_provider_without_a_groups_claim_leaves_memberships_alone(use_oidc, oidc_provider):
    use_oidc(claims={"groups": ""})
    org = OrganizationFactory(slug="acme")
    GroupMapping.objects.create(source="oidc:peer", group="ml-engineers", organization=org, role=Role.MEMBER)
    sign_in_through(oidc_provider, "ada")
    assert not Membership.objects.filter(organization=org).exists()


def test_a_required_claim_that_does_not_match_refuses_the_sign_in(use_oidc, oidc_provider):
    use_oidc(preset="google-workspace", required_claims={"hd": "corp.example"})
    flow, response = sign_in_through(oidc_provider, "ada")  # ada has no hd claim
    assert response.status_code == 401
    assert signed_in_user_id(flow.client) is None
    assert not User.objects.filter(email="ada@idp.example").exists()
    failure = AuditEvent.objects.get(action="auth.sso_failed")
    assert "“hd” is None, not 'corp.example'" in failure.metadata["reason"]


def test_a_provider_configured_in_the_admin_works_like_one_from_the_environment(settings, oidc_provider):
    from allauth.socialaccount.models import SocialApp

    from apps.accounts.oidc.config import oidc_app
    from tests.peers.oidc_provider import CLIENT_ID, CLIENT_SECRET

    settings.SOCIALACCOUNT_PROVIDERS = {
        **settings.SOCIALACCOUNT_PROVIDERS,
        "openid_connect": {**settings.SOCIALACCOUNT_PROVIDERS["openid_connect"], "APPS": []},
    }
    app = oidc_app(
        {"id": "peer", "issuer": oidc_provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )
    SocialApp.objects.create(
        provider="openid_connect",
        provider_id="peer",
        name="Admin IdP",
        client_id=app["client_id"],
        secret=app["secret"],
        settings=app["settings"],
    )
    flow, _ = sign_in_through(oidc_provider, "ada")
    assert signed_in_user_id(flow.client) == str(User.objects.get(email="ada@idp.example").pk)


def test_a_handle_taken_between_choosing_and_saving_gets_another_instead_of_an_error(peer, monkeypatch):
    from apps.accounts import provisioning

    # Someone creates the organization "ada-lovelace" after this sign-up found the name free (handles and
    # organization slugs are one namespace): the portal's checks answered from before it, the INSERT of the
    # personal organization fails.
    OrganizationFactory(slug="ada-lovelace")
    stale = iter(["ada-lovelace"])
    monkeypatch.setattr(
        "apps.accounts.social.suggest_handle", lambda hints: next(stale, None) or provisioning.suggest_handle(hints)
    )
    monkeypatch.setattr("apps.accounts.adapters.namespace_is_taken", lambda *args, **kwargs: False)

    flow, response = sign_in_through(peer, "ada")

    assert response.status_code == 302
    user = User.objects.get(email="ada@idp.example")
    assert user.handle == "ada"  # the next free one: the address's local part
    assert user.personal_organization.slug == "ada"
    assert signed_in_user_id(flow.client) == str(user.pk)
