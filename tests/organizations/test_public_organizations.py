"""A public organization shows itself, its members and its teams to anyone; changing them still needs the role,
and a token bound to another organization may only read there."""

from __future__ import annotations

import pytest

from apps.organizations.models import Organization
from tests.factories import OrganizationFactory
from tests.organizations.conftest import snapshot

pytestmark = pytest.mark.django_db

ACME = "/api/v1/orgs/acme"


@pytest.fixture
def public_acme(world, team):
    world.org.visibility = "public"
    world.org.save()
    return world.org


@pytest.mark.parametrize("persona", ["outsider", "anonymous"])
def test_anyone_sees_a_public_organizations_members_and_teams(public_acme, client_as, persona):
    api = client_as(persona)
    assert "member-user" in [m["handle"] for m in api.get(f"{ACME}/members/").data["results"]]
    assert api.get(f"{ACME}/members/member-user/").status_code == 200
    assert [t["slug"] for t in api.get(f"{ACME}/teams/").data["results"]] == ["ml"]
    assert api.get(f"{ACME}/teams/ml/").status_code == 200
    assert [u["handle"] for u in api.get(f"{ACME}/teams/ml/members/").data["results"]] == ["member-user"]


def test_an_outsider_may_look_but_not_touch(public_acme, client_as):
    api = client_as("outsider")
    before = snapshot()
    assert api.patch(f"{ACME}/", {"name": "Mine"}).status_code == 403
    assert api.patch(f"{ACME}/members/member-user/", {"role": "viewer"}).status_code == 403
    assert api.delete(f"{ACME}/members/member-user/").status_code == 403
    assert api.post(f"{ACME}/teams/", {"slug": "mine"}).status_code == 403
    assert api.patch(f"{ACME}/teams/ml/", {"name": "Mine"}).status_code == 403
    assert api.post(f"{ACME}/teams/ml/members/", {"handle": "outsider-user"}).status_code == 403
    assert api.post(f"{ACME}/invitations/", {"email": "me@example.com"}).status_code == 403
    assert snapshot() == before


def test_an_internal_organizations_members_are_seen_by_signed_in_users_only(world, client_as):
    world.org.visibility = "internal"
    world.org.save()
    assert client_as("outsider").get(f"{ACME}/members/").status_code == 200
    assert client_as("anonymous").get(f"{ACME}/members/").status_code in (401, 404)


def test_a_token_bound_to_another_organization_only_reads_a_public_one(public_acme, world, client_as):
    elsewhere = OrganizationFactory(slug="elsewhere")
    from apps.core.access import Role
    from tests.factories import MembershipFactory

    MembershipFactory(organization=elsewhere, user=world.user("owner"), role=Role.OWNER)
    api = client_as("owner", organization=elsewhere)
    assert api.get(f"{ACME}/members/").status_code == 200
    assert api.get(f"{ACME}/teams/ml/").status_code == 200
    before = snapshot()
    for method, url, body in [
        ("patch", f"{ACME}/", {"name": "Renamed"}),
        ("delete", f"{ACME}/", None),
        ("patch", f"{ACME}/members/member-user/", {"role": "viewer"}),
        ("delete", f"{ACME}/members/viewer-user/", None),
        ("post", f"{ACME}/teams/", {"slug": "ops"}),
        ("patch", f"{ACME}/teams/ml/", {"name": "Renamed"}),
        ("delete", f"{ACME}/teams/ml/", None),
        ("post", f"{ACME}/teams/ml/members/", {"handle": "viewer-user"}),
        ("delete", f"{ACME}/teams/ml/members/member-user/", None),
        ("post", f"{ACME}/invitations/", {"email": "x@example.com"}),
        ("get", f"{ACME}/invitations/", None),
        ("post", f"{ACME}/leave/", None),
    ]:
        answer = getattr(api, method)(url, body, format="json") if body else getattr(api, method)(url)
        assert answer.status_code == 403, (method, url, answer.status_code)
    assert snapshot() == before
    assert Organization.objects.filter(slug="acme").exists()
