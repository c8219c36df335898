"""Scopes nest (read ⊂ write ⊂ run ⊂ admin). Managing one's profile and tokens needs admin (or a session)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.models import ApiToken, TokenScope
from tests.factories import UserFactory, make_token

pytestmark = pytest.mark.django_db

PROFILE = reverse("api:user-detail")
TOKENS = reverse("api:user-token-list")
BELOW_ADMIN = [TokenScope.READ, TokenScope.WRITE, TokenScope.RUN]


@pytest.mark.parametrize("scope", list(TokenScope))
def test_every_scope_may_read_the_profile_and_the_token_list(api_client, scope):
    client = api_client(UserFactory(), scope=scope)
    assert client.get(PROFILE).status_code == 200
    assert client.get(TOKENS).status_code == 200


def test_a_read_token_cannot_post(api_client):
    client = api_client(UserFactory(), scope=TokenScope.READ)
    response = client.post(TOKENS, {"name": "more", "scope": "read"})
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert ApiToken.objects.count() == 1


@pytest.mark.parametrize("scope", BELOW_ADMIN)
def test_tokens_below_admin_cannot_create_tokens(api_client, scope):
    response = api_client(UserFactory(), scope=scope).post(TOKENS, {"name": "more", "scope": "read"})
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert "admin" in response.json()["detail"]


@pytest.mark.parametrize("scope", BELOW_ADMIN)
def test_tokens_below_admin_cannot_change_the_profile(api_client, scope):
    user = UserFactory(name="Before")
    response = api_client(user, scope=scope).patch(PROFILE, {"name": "After"})
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.name == "Before"


@pytest.mark.parametrize("scope", BELOW_ADMIN)
def test_tokens_below_admin_cannot_revoke_tokens(api_client, scope):
    user = UserFactory()
    make_token(user, scope=TokenScope.READ)
    other = ApiToken.objects.get()
    response = api_client(user, scope=scope).delete(reverse("api:user-token-detail", kwargs={"uuid": other.uuid}))
    assert response.status_code == 403
    other.refresh_from_db()
    assert other.revoked_at is None


def test_a_write_token_of_an_org_admin_cannot_revoke_the_orgs_tokens(world, api_client):
    make_token(world.user("member"), scope=TokenScope.READ, organization=world.org)
    token = ApiToken.objects.get()
    url = reverse("api:org-token-detail", kwargs={"org_slug": "acme", "uuid": token.uuid})
    client = api_client(world.user("admin"), scope=TokenScope.WRITE)
    assert client.get(url).status_code == 200
    assert client.delete(url).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_an_admin_token_may_do_all_of_it(world, api_client):
    make_token(world.user("member"), scope=TokenScope.READ, organization=world.org)
    bound = ApiToken.objects.get()
    user = world.user("admin")
    client = api_client(user, scope=TokenScope.ADMIN)
    created = client.post(TOKENS, {"name": "more", "scope": "admin"})
    assert created.status_code == 201
    assert client.patch(PROFILE, {"name": "Renamed"}).status_code == 200
    mine = ApiToken.objects.get(uuid=created.json()["uuid"])
    assert client.delete(reverse("api:user-token-detail", kwargs={"uuid": mine.uuid})).status_code == 204
    org_url = reverse("api:org-token-detail", kwargs={"org_slug": "acme", "uuid": bound.uuid})
    assert client.delete(org_url).status_code == 204
    assert ApiToken.objects.get(pk=bound.pk).status == "revoked"
