"""Leaving an organization: anyone but the last owner may leave; nobody leaves their personal organization."""

from __future__ import annotations

import pytest

from apps.core.access import Role
from apps.organizations.models import Membership
from tests.factories import MembershipFactory, UserFactory
from tests.organizations.conftest import actions, snapshot

pytestmark = pytest.mark.django_db

LEAVE = "/api/v1/orgs/acme/leave/"


def test_a_member_leaves_and_their_team_places_go_with_them(world, client_as, team):
    answer = client_as("member").post(LEAVE)
    assert answer.status_code == 204
    assert not Membership.objects.filter(organization=world.org, user=world.user("member")).exists()
    assert not team.group.user_set.filter(pk=world.user("member").pk).exists()
    assert actions(world.org)[-1] == "member.left"


def test_the_last_owner_cannot_leave(world, client_as):
    before = snapshot()
    answer = client_as("owner").post(LEAVE)
    assert answer.status_code == 400
    assert answer.data["codes"] == {"organization": ["last_owner"]}
    assert "last owner" in answer.data["organization"][0]
    assert snapshot() == before


def test_an_owner_leaves_when_another_owner_remains(world, client_as):
    MembershipFactory(organization=world.org, user=UserFactory(), role=Role.OWNER)
    assert client_as("owner").post(LEAVE).status_code == 204


def test_nobody_leaves_their_personal_organization(world, client_as):
    owner = world.user("owner")
    before = snapshot()
    answer = client_as("owner").post(f"/api/v1/orgs/{owner.handle}/leave/")
    assert answer.status_code == 400
    assert answer.data["codes"] == {"organization": ["personal_organization"]}
    assert snapshot() == before


def test_an_outsider_gets_404_leaving_a_private_organization(world, client_as):
    assert client_as("outsider").post(LEAVE).status_code == 404


def test_a_non_member_of_a_public_organization_is_told_they_are_not_a_member(world, client_as):
    world.org.visibility = "public"
    world.org.save()
    answer = client_as("outsider").post(LEAVE)
    assert answer.status_code == 400
    assert answer.data["codes"] == {"organization": ["not_a_member"]}


def test_leaving_needs_a_session_or_an_admin_token(world, client_as):
    from apps.accounts.models import TokenScope

    answer = client_as("member", scope=TokenScope.WRITE).post(LEAVE)
    assert answer.status_code == 403
    assert Membership.objects.filter(organization=world.org, user=world.user("member")).exists()


def test_anonymous_cannot_leave(world, client_as):
    assert client_as("anonymous").post(LEAVE).status_code in (401, 403)
