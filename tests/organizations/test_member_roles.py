"""The role rules of DESIGN.md's table, through the members API: admins manage members up to admin, only owners
touch owners, nobody grants a role above their own, and the last owner can neither be demoted nor removed."""

from __future__ import annotations

import pytest

from apps.core.access import Role
from apps.organizations import services
from apps.organizations.models import Membership
from tests.factories import MembershipFactory, UserFactory
from tests.organizations.conftest import snapshot

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/orgs/acme/members/"


def role_in_acme(world, persona: str) -> Role:
    return Role(Membership.objects.get(organization=world.org, user=world.user(persona)).role)


def test_everyone_in_the_organization_sees_its_members_with_their_roles(world, client_as):
    for persona in ("owner", "admin", "member", "viewer"):
        answer = client_as(persona).get(MEMBERS)
        assert answer.status_code == 200
        assert {m["handle"]: m["role"] for m in answer.data["results"]} == {
            "owner-user": "owner",
            "admin-user": "admin",
            "member-user": "member",
            "viewer-user": "viewer",
        }


def test_admin_promotes_a_member_to_admin(world, client_as):
    answer = client_as("admin").patch(f"{MEMBERS}member-user/", {"role": "admin"})
    assert answer.status_code == 200, answer.data
    assert answer.data["role"] == "admin"
    assert role_in_acme(world, "member") == Role.ADMIN


def test_admin_demotes_another_admin(world, client_as):
    MembershipFactory(organization=world.org, user=UserFactory(handle="second-admin"), role=Role.ADMIN)
    answer = client_as("admin").patch(f"{MEMBERS}second-admin/", {"role": "viewer"})
    assert answer.status_code == 200, answer.data


def test_admin_cannot_grant_the_owner_role(world, client_as):
    before = snapshot()
    answer = client_as("admin").patch(f"{MEMBERS}member-user/", {"role": "owner"})
    assert answer.status_code == 403
    assert "above your own" in str(answer.data["detail"])
    assert snapshot() == before


def test_admin_cannot_demote_an_owner(world, client_as):
    before = snapshot()
    answer = client_as("admin").patch(f"{MEMBERS}owner-user/", {"role": "member"})
    assert answer.status_code == 403
    assert "owner" in str(answer.data["detail"])
    assert snapshot() == before


def test_admin_cannot_remove_an_owner(world, client_as):
    before = snapshot()
    answer = client_as("admin").delete(f"{MEMBERS}owner-user/")
    assert answer.status_code == 403
    assert snapshot() == before


def test_admin_removes_a_member(world, client_as):
    answer = client_as("admin").delete(f"{MEMBERS}member-user/")
    assert answer.status_code == 204
    assert not Membership.objects.filter(organization=world.org, user=world.user("member")).exists()


def test_members_and_viewers_cannot_change_roles_or_remove_anyone(world, client_as):
    before = snapshot()
    for persona in ("member", "viewer"):
        assert client_as(persona).patch(f"{MEMBERS}viewer-user/", {"role": "member"}).status_code == 403
        assert client_as(persona).delete(f"{MEMBERS}viewer-user/").status_code == 403
    assert snapshot() == before


def test_a_member_cannot_promote_themself(world, client_as):
    answer = client_as("member").patch(f"{MEMBERS}member-user/", {"role": "admin"})
    assert answer.status_code == 403
    assert role_in_acme(world, "member") == Role.MEMBER


def test_nobody_grants_a_role_above_their_own_even_through_the_service(world):
    from django.core.exceptions import PermissionDenied

    membership = Membership.objects.get(organization=world.org, user=world.user("viewer"))
    with pytest.raises(PermissionDenied):
        services.change_member_role(actor=world.user("admin"), membership=membership, role=Role.OWNER)
    with pytest.raises(PermissionDenied):
        services.change_member_role(actor=world.user("member"), membership=membership, role=Role.MEMBER)


def test_owner_grants_and_revokes_the_owner_role(world, client_as):
    assert client_as("owner").patch(f"{MEMBERS}admin-user/", {"role": "owner"}).status_code == 200
    assert role_in_acme(world, "admin") == Role.OWNER
    assert client_as("owner").patch(f"{MEMBERS}admin-user/", {"role": "admin"}).status_code == 200
    assert role_in_acme(world, "admin") == Role.ADMIN


def test_the_last_owner_cannot_be_demoted(world, client_as):
    before = snapshot()
    answer = client_as("owner").patch(f"{MEMBERS}owner-user/", {"role": "admin"})
    assert answer.status_code == 400
    assert answer.data["codes"] == {"role": ["last_owner"]}
    assert "last owner" in answer.data["role"][0]
    assert snapshot() == before


def test_an_owner_can_step_down_when_another_owner_remains(world, client_as):
    client_as("owner").patch(f"{MEMBERS}admin-user/", {"role": "owner"})
    answer = client_as("owner").patch(f"{MEMBERS}owner-user/", {"role": "admin"})
    assert answer.status_code == 200
    assert role_in_acme(world, "owner") == Role.ADMIN


def test_the_last_owner_cannot_be_removed_even_by_themself(world, client_as):
    before = snapshot()
    answer = client_as("owner").delete(f"{MEMBERS}owner-user/")
    assert answer.status_code == 400
    assert answer.data["code"] == "validation_error"
    assert list(answer.data["codes"].values()) == [["last_owner"]]
    assert snapshot() == before


def test_an_owner_removes_another_owner(world, client_as):
    MembershipFactory(organization=world.org, user=UserFactory(handle="co-owner"), role=Role.OWNER)
    assert client_as("owner").delete(f"{MEMBERS}co-owner/").status_code == 204


def test_removing_a_member_takes_them_out_of_the_organizations_teams(world, client_as, team):
    assert team.group.user_set.filter(pk=world.user("member").pk).exists()
    assert client_as("admin").delete(f"{MEMBERS}member-user/").status_code == 204
    assert not team.group.user_set.filter(pk=world.user("member").pk).exists()


def test_removing_a_member_leaves_their_teams_in_other_organizations(world, client_as, team):
    other = services.create_organization(creator=world.user("member"), slug="other", name="Other")
    other_team = services.create_team(actor=world.user("member"), organization=other, slug="crew")
    services.add_team_member(actor=world.user("member"), team=other_team, user=world.user("member"))
    assert client_as("admin").delete(f"{MEMBERS}member-user/").status_code == 204
    assert other_team.group.user_set.filter(pk=world.user("member").pk).exists()


def test_an_unknown_member_handle_answers_404(world, client_as):
    assert client_as("owner").get(f"{MEMBERS}nobody-here/").status_code == 404
    assert client_as("owner").patch(f"{MEMBERS}outsider-user/", {"role": "viewer"}).status_code == 404


def test_members_cannot_be_added_through_the_members_route(world, client_as):
    answer = client_as("owner").post(MEMBERS, {"handle": "outsider-user", "role": "member"})
    assert answer.status_code == 405
