"""An organization that requires MFA: its members without an authenticator are sent to set one up when they open
its pages, and its API answers their session 403 ``mfa_required``; members with MFA, API tokens and other
organizations are unaffected. Owners switch it on in the organization's settings."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.access import Visibility
from apps.organizations import services
from tests.conftest import api_client_for
from tests.pages.mfa import enrol_totp, fresh_totp, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(world):
    services.update_organization(actor=world.user("owner"), organization=world.org, require_mfa=True)
    return world


@pytest.mark.parametrize("page", ["org-overview", "org-members", "org-teams", "org-jobs", "org-audit"])
def test_member_without_mfa_is_sent_to_set_it_up(strict, page_client, page):
    response = page_client("admin").get(reverse(page, args=["acme"]), follow=True)
    assert response.redirect_chain[0][0].startswith(reverse("mfa_activate_totp"))
    assert "requires two-factor authentication" in response.content.decode()


def test_member_with_mfa_opens_the_pages(strict):
    user = strict.user("member")
    client = Client()
    secret, _ = enrol_totp(client, user.email)
    assert client.get(reverse("org-members", args=["acme"])).status_code == 200

    later = Client()
    sign_in(later, user.email)
    later.post(reverse("mfa_authenticate"), {"code": fresh_totp(secret)})
    assert later.get(reverse("org-overview", args=["acme"])).status_code == 200


def test_the_members_other_organizations_are_unaffected(strict, page_client):
    personal = strict.user("member").handle
    assert page_client("member").get(reverse("org-overview", args=[personal])).status_code == 200


def test_a_non_member_of_a_public_strict_organization_is_not_asked_for_mfa(strict, page_client):
    services.update_organization(actor=strict.user("owner"), organization=strict.org, visibility=Visibility.PUBLIC)
    assert page_client("outsider").get(reverse("org-overview", args=["acme"])).status_code == 200


def test_api_with_a_session_answers_403_mfa_required(strict, page_client):
    response = page_client("member").get("/api/v1/orgs/acme/members/")
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_required"


def test_api_with_a_token_is_not_asked_for_mfa(strict):
    response = api_client_for(strict.user("member")).get("/api/v1/orgs/acme/members/")
    assert response.status_code == 200


def test_owner_switches_it_on_in_the_settings_page(world, page_client):
    client = page_client("owner")
    response = client.post(
        reverse("org-settings", args=["acme"]),
        {"slug": "acme", "name": "Acme", "visibility": "private", "require_mfa": "on"},
    )
    assert response.status_code == 302
    world.org.refresh_from_db()
    assert world.org.require_mfa is True
    assert (
        page_client("viewer")
        .get(reverse("org-overview", args=["acme"]))["Location"]
        .startswith(reverse("mfa_activate_totp"))
    )
