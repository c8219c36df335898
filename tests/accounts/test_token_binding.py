"""A token bound to an organization sees that organization's objects and public ones, nothing else,
and cannot make itself a wider token (another binding, a wider scope, a longer life)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from apps.accounts.authentication import BearerTokenAuthentication
from apps.accounts.models import ApiToken, TokenScope
from apps.core.access import Role, Visibility
from apps.core.api.views import bound_organization_id
from apps.organizations.models import Organization
from tests.factories import MembershipFactory, OrganizationFactory, make_token

pytestmark = pytest.mark.django_db

TOKENS = reverse("api:user-token-list")


@pytest.fixture
def two_orgs(world):
    """The acme admin is also an admin of a second private organization, ``beta``, and sees a public one."""
    beta = OrganizationFactory(slug="beta")
    MembershipFactory(organization=beta, user=world.user("admin"), role=Role.ADMIN)
    OrganizationFactory(slug="open-source", visibility=Visibility.PUBLIC)
    return world.org, beta


def organizations_seen_by(raw_token: str) -> set[str]:
    """What the API's own authentication and restrict() let this token see among organizations."""
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    user, token = BearerTokenAuthentication().authenticate(request)
    request.auth = token
    visible = Organization.objects.restrict(user, "view", within_organization=bound_organization_id(request))
    return set(visible.values_list("slug", flat=True))


def test_an_unbound_token_sees_every_organization_of_its_owner_and_public_ones(world, two_orgs):
    seen = organizations_seen_by(make_token(world.user("admin")))
    assert {"acme", "beta", "open-source"} <= seen


def test_a_bound_token_sees_its_organization_and_public_ones_only(world, two_orgs):
    seen = organizations_seen_by(make_token(world.user("admin"), organization=world.org))
    assert "acme" in seen
    assert "open-source" in seen
    assert "beta" not in seen
    assert "admin-user" not in seen  # not even the owner's personal organization


def test_a_token_bound_to_acme_gets_404_on_betas_tokens_though_its_owner_is_betas_admin(world, two_orgs, api_client):
    _, beta = two_orgs
    make_token(world.user("admin"), scope=TokenScope.READ, organization=beta)
    beta_token = ApiToken.objects.get(organization=beta)
    client = api_client(world.user("admin"), organization=world.org)
    assert client.get(reverse("api:org-token-list", kwargs={"org_slug": "beta"})).status_code == 404
    detail = reverse("api:org-token-detail", kwargs={"org_slug": "beta", "uuid": beta_token.uuid})
    assert client.get(detail).status_code == 404
    assert client.delete(detail).status_code == 404
    assert client.get(reverse("api:org-token-list", kwargs={"org_slug": "acme"})).status_code == 200
    # Unbound, the same user manages beta's tokens.
    assert api_client(world.user("admin")).get(detail).status_code == 200


def test_a_token_bound_to_acme_lists_only_its_owners_tokens_bound_to_acme(world, two_orgs, api_client):
    _, beta = two_orgs
    admin = world.user("admin")
    make_token(admin, organization=beta)
    make_token(admin)
    client = api_client(admin, organization=world.org)
    listed = client.get(TOKENS).json()["results"]
    assert {item["organization"] for item in listed} == {"acme"}
    elsewhere = ApiToken.objects.get(organization=beta)
    assert client.get(reverse("api:user-token-detail", kwargs={"uuid": elsewhere.uuid})).status_code == 404
    assert client.delete(reverse("api:user-token-detail", kwargs={"uuid": elsewhere.uuid})).status_code == 404
    assert ApiToken.objects.get(pk=elsewhere.pk).revoked_at is None


def test_a_bound_token_cannot_create_a_token_for_another_organization(world, two_orgs, api_client):
    client = api_client(world.user("admin"), organization=world.org)
    response = client.post(TOKENS, {"name": "escape", "scope": "read", "organization": "beta"})
    assert response.status_code == 400
    assert response.json()["codes"]["organization"] == ["binding_escalation"]
    assert ApiToken.objects.count() == 1


def test_a_token_made_by_a_bound_token_without_a_binding_inherits_it(world, two_orgs, api_client):
    client = api_client(world.user("admin"), organization=world.org)
    response = client.post(TOKENS, {"name": "child", "scope": "read"})
    assert response.status_code == 201
    assert response.json()["organization"] == "acme"


def test_a_bound_token_may_create_tokens_bound_to_its_own_organization(world, two_orgs, api_client):
    client = api_client(world.user("admin"), organization=world.org)
    response = client.post(TOKENS, {"name": "child", "scope": "write", "organization": "acme"})
    assert response.status_code == 201
    assert ApiToken.objects.get(uuid=response.json()["uuid"]).organization == world.org


def test_a_token_cannot_create_a_token_that_outlives_it(world, api_client):
    soon = timezone.now() + timedelta(days=1)
    client = api_client(world.user("admin"), expires_at=soon)
    later = (soon + timedelta(days=1)).isoformat()
    refused = client.post(TOKENS, {"name": "forever", "scope": "read", "expires_at": later})
    assert refused.status_code == 400
    assert refused.json()["codes"]["expires_at"] == ["expiry_escalation"]
    inherited = client.post(TOKENS, {"name": "child", "scope": "read"})
    assert inherited.status_code == 201
    assert ApiToken.objects.get(uuid=inherited.json()["uuid"]).expires_at == soon


def test_a_bound_token_cannot_change_the_profile(world, api_client):
    admin = world.user("admin")
    response = api_client(admin, organization=world.org).patch(reverse("api:user-detail"), {"handle": "taken-over"})
    assert response.status_code == 403
    assert response.json()["code"] == "token_binding"
    admin.refresh_from_db()
    assert admin.handle == "admin-user"


def test_a_token_bound_to_the_personal_organization_may_change_the_profile(world, api_client):
    admin = world.user("admin")
    client = api_client(admin, organization=admin.personal_organization)
    assert client.patch(reverse("api:user-detail"), {"name": "Ada"}).status_code == 200
