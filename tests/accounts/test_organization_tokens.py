"""/api/v1/orgs/{org}/tokens/: admins and owners of an organization see and revoke the tokens bound to it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, TokenScope
from apps.accounts.services import revoke_member_tokens
from apps.audit.models import AuditEvent
from apps.core.access import Visibility
from tests.factories import MembershipFactory, OrganizationFactory, make_token

pytestmark = pytest.mark.django_db

LIST = reverse("api:org-token-list", kwargs={"org_slug": "acme"})

# DESIGN.md's role table: admins "see the org's audit trail and tokens"; an org one may not view answers 404.
EXPECTED = {"owner": 200, "admin": 200, "member": 403, "viewer": 403, "outsider": 404, "anonymous": 401}
EXPECTED_REVOKE = {"owner": 204, "admin": 204, "member": 403, "viewer": 403, "outsider": 404, "anonymous": 401}


@pytest.fixture
def member_token(world):
    make_token(world.user("member"), scope=TokenScope.RUN, organization=world.org)
    return ApiToken.objects.get(organization=world.org)


def client_for(world, api_client, persona):
    return APIClient() if persona == "anonymous" else api_client(world.user(persona))


def detail(token) -> str:
    return reverse("api:org-token-detail", kwargs={"org_slug": "acme", "uuid": token.uuid})


@pytest.mark.parametrize(("persona", "status"), EXPECTED.items())
def test_who_may_list_the_tokens_bound_to_an_organization(world, api_client, member_token, persona, status):
    response = client_for(world, api_client, persona).get(LIST)
    assert response.status_code == status
    if status == 200:
        listed = response.json()["results"]
        assert [item["uuid"] for item in listed] == [str(member_token.uuid)]
        assert listed[0]["user"] == "member-user"
        assert "token" not in listed[0] and "secret_hash" not in listed[0]


@pytest.mark.parametrize(("persona", "status"), EXPECTED.items())
def test_who_may_see_one_token_bound_to_an_organization(world, api_client, member_token, persona, status):
    assert client_for(world, api_client, persona).get(detail(member_token)).status_code == status


@pytest.mark.parametrize(("persona", "status"), EXPECTED_REVOKE.items())
def test_who_may_revoke_a_token_bound_to_an_organization(world, api_client, member_token, persona, status):
    response = client_for(world, api_client, persona).delete(detail(member_token))
    assert response.status_code == status
    member_token.refresh_from_db()
    assert (member_token.revoked_at is not None) == (status == 204)


def test_an_admins_revocation_is_audited_in_the_organizations_chain(world, api_client, member_token):
    api_client(world.user("admin")).delete(detail(member_token))
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.organization == world.org
    assert event.actor == world.user("admin")
    assert event.metadata["owner"] == "member-user"
    member_token.refresh_from_db()
    assert member_token.revoked_by == world.user("admin")


def test_unbound_tokens_and_tokens_bound_elsewhere_are_not_the_organizations_business(world, api_client):
    member = world.user("member")
    make_token(member, scope=TokenScope.READ)
    elsewhere = OrganizationFactory(slug="elsewhere")
    MembershipFactory(organization=elsewhere, user=member)
    make_token(member, scope=TokenScope.READ, organization=elsewhere)
    client = api_client(world.user("admin"))
    assert client.get(LIST).json()["results"] == []
    for token in ApiToken.objects.filter(user=member).exclude(organization=world.org):
        if token.organization_id is None or token.organization != world.org:
            assert client.get(detail(token)).status_code == 404
            assert client.delete(detail(token)).status_code == 404
            token.refresh_from_db()
            assert token.revoked_at is None


def test_a_member_revokes_their_own_bound_token_through_their_own_list(world, api_client, member_token):
    response = api_client(world.user("member")).delete(
        reverse("api:user-token-detail", kwargs={"uuid": member_token.uuid})
    )
    assert response.status_code == 204


def test_organization_token_lists_filter_by_owner_and_search_by_name(world, api_client):
    make_token(world.user("member"), scope=TokenScope.READ, organization=world.org)
    make_token(world.user("viewer"), scope=TokenScope.READ, organization=world.org)
    ApiToken.objects.filter(user=world.user("member")).update(name="deploy")
    ApiToken.objects.filter(user=world.user("viewer")).update(name="notebook")
    client = api_client(world.user("owner"))
    assert [t["name"] for t in client.get(LIST, {"user": "viewer-user"}).json()["results"]] == ["notebook"]
    assert [t["name"] for t in client.get(LIST, {"search": "depl"}).json()["results"]] == ["deploy"]


def test_an_unknown_organization_answers_404(world, api_client):
    url = reverse("api:org-token-list", kwargs={"org_slug": "no-such-org"})
    assert api_client(world.user("admin")).get(url).status_code == 404


def test_an_outsider_may_view_a_public_organization_but_gets_403_on_its_tokens(world, api_client, member_token):
    world.org.visibility = Visibility.PUBLIC
    world.org.save()
    client = api_client(world.user("outsider"))
    assert client.get(LIST).status_code == 403
    assert client.delete(detail(member_token)).status_code == 403
    member_token.refresh_from_db()
    assert member_token.revoked_at is None


def test_a_members_bound_tokens_are_revoked_when_their_membership_ends(world, member_token):
    make_token(world.user("member"), scope=TokenScope.READ)  # unbound: not the organization's business
    revoked = revoke_member_tokens(organization=world.org, user=world.user("member"), by=world.user("admin"))
    assert revoked == 1
    member_token.refresh_from_db()
    assert member_token.status == "revoked"
    assert ApiToken.objects.filter(organization__isnull=True, revoked_at__isnull=True).count() == 1
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.organization == world.org
    assert event.metadata["reason"] == "membership ended"
