"""API tokens in the pages: the secret is shown once, on the answer that made it; revocation works; org admins
see and revoke the tokens bound to their organization, and nobody else's."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def test_creating_a_token_shows_its_secret_once_and_the_secret_works(world, page_client):
    client = page_client("member")
    response = client.post(reverse("account-tokens"), {"name": "laptop", "scope": 10})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = response.context["secret"]
    assert secret.startswith("gpux_") and secret in response.content.decode()
    token = ApiToken.objects.get(user=world.user("member"), name="laptop")
    assert token.prefix in secret

    again = client.get(reverse("account-tokens"))
    assert secret not in again.content.decode()
    assert token.prefix in again.content.decode()

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/user/").status_code == 200


def test_a_token_bound_to_an_organization_is_made_from_the_page(world, page_client):
    response = page_client("admin").post(
        reverse("account-tokens"), {"name": "ci", "scope": 40, "organization": "acme", "expires_on": "2099-12-31"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="ci")
    assert token.organization == world.org
    assert token.expires_at.year == 2099


def test_revoking_my_token_stops_it(world, page_client):
    client = page_client("member")
    client.post(reverse("account-tokens"), {"name": "laptop", "scope": 10})
    token = ApiToken.objects.get(name="laptop")
    response = client.post(reverse("account-token-revoke", args=[token.uuid]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.status == "revoked"


def test_nobody_revokes_another_users_token_from_their_token_page(world, page_client):
    make_token(world.user("owner"))
    token = ApiToken.objects.get(user=world.user("owner"))
    assert page_client("admin").post(reverse("account-token-revoke", args=[token.uuid])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_my_token_page_lists_only_my_tokens(world, page_client):
    make_token(world.user("owner"))
    page = page_client("member").get(reverse("account-tokens"))
    assert page.context["page_obj"].paginator.count == 0
    assert "No tokens yet" in page.content.decode()


def test_organization_admin_sees_and_revokes_a_members_token_bound_to_it(world, page_client):
    make_token(world.user("member"), organization=world.org)
    make_token(world.user("member"))  # not bound: not the organization's business
    token = ApiToken.objects.get(user=world.user("member"), organization=world.org)
    page = page_client("admin").get(reverse("org-tokens", args=["acme"]))
    assert [t.pk for t in page.context["page_obj"]] == [token.pk]
    response = page_client("admin").post(reverse("org-token-revoke", args=["acme", token.uuid]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_by == world.user("admin")


def test_a_member_cannot_revoke_tokens_through_the_organization_page(world, page_client):
    make_token(world.user("owner"), organization=world.org)
    token = ApiToken.objects.get(user=world.user("owner"))
    assert page_client("member").post(reverse("org-token-revoke", args=["acme", token.uuid])).status_code == 403
    assert page_client("outsider").post(reverse("org-token-revoke", args=["acme", token.uuid])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
