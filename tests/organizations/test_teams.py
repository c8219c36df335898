"""Teams: admins make, rename and delete them and choose their members among the organization's members;
a team's slug is unique in its organization; each team is its own auth group (for guardian grants)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from apps.accounts.models import TokenScope
from apps.organizations import services
from apps.organizations.models import Team
from tests.factories import OrganizationFactory
from tests.organizations.conftest import snapshot

pytestmark = pytest.mark.django_db

TEAMS = "/api/v1/orgs/acme/teams/"


def test_an_admin_makes_a_team_with_its_own_group(world, client_as):
    answer = client_as("admin").post(TEAMS, {"slug": "Vision", "name": "Vision", "description": "Eyes"})
    assert answer.status_code == 201, answer.data
    assert answer.data["slug"] == "vision"
    assert answer.data["member_count"] == 0
    team = Team.objects.get(organization=world.org, slug="vision")
    assert team.group.name == f"team:{team.uuid}"


def test_a_team_without_a_name_is_named_by_its_slug(world, client_as):
    answer = client_as("admin").post(TEAMS, {"slug": "infra"})
    assert answer.status_code == 201
    assert answer.data["name"] == "infra"


def test_two_organizations_may_have_teams_of_the_same_slug(world, team):
    other = services.create_organization(creator=world.user("owner"), slug="globex", name="Globex")
    other_team = services.create_team(actor=world.user("owner"), organization=other, slug="ml")
    assert other_team.slug == team.slug
    assert other_team.group_id != team.group_id


def test_a_duplicate_team_slug_is_refused_case_insensitively(world, client_as, team):
    before = snapshot()
    for slug in ("ml", "ML"):
        answer = client_as("admin").post(TEAMS, {"slug": slug, "name": "Again"})
        assert answer.status_code == 400
        assert answer.data["codes"] == {"slug": ["taken"]}
    assert snapshot() == before


def test_renaming_a_team_onto_another_teams_slug_is_refused(world, client_as, team):
    services.create_team(actor=world.user("admin"), organization=world.org, slug="infra")
    before = snapshot()
    answer = client_as("admin").patch(f"{TEAMS}infra/", {"slug": "ml"})
    assert answer.status_code == 400
    assert answer.data["codes"] == {"slug": ["taken"]}
    assert snapshot() == before


@pytest.mark.parametrize(
    "slug,code", [("-ml", "invalid_slug"), ("m l", "invalid_slug"), ("new", "reserved"), ("x" * 51, "invalid_slug")]
)
def test_a_malformed_or_reserved_team_slug_is_refused(world, client_as, slug, code):
    before = snapshot()
    answer = client_as("admin").post(TEAMS, {"slug": slug})
    assert answer.status_code == 400
    assert "slug" in answer.data
    if len(slug) <= 50:
        assert answer.data["codes"] == {"slug": [code]}
    assert snapshot() == before


def test_an_admin_renames_and_describes_a_team(world, client_as, team):
    answer = client_as("admin").patch(f"{TEAMS}ml/", {"slug": "research", "description": "Papers"})
    assert answer.status_code == 200, answer.data
    assert answer.data["slug"] == "research"
    assert answer.data["member_count"] == 1
    assert client_as("admin").get(f"{TEAMS}research/").data["description"] == "Papers"


def test_an_admin_deletes_a_team_and_its_group(world, client_as, team):
    group_id = team.group_id
    assert client_as("admin").delete(f"{TEAMS}ml/").status_code == 204
    assert not Team.objects.filter(pk=team.pk).exists()
    assert not Group.objects.filter(pk=group_id).exists()


@pytest.mark.parametrize("persona", ["member", "viewer"])
def test_members_and_viewers_see_teams_but_cannot_change_them(world, client_as, team, persona):
    api = client_as(persona)
    assert api.get(TEAMS).data["count"] == 1
    assert api.get(f"{TEAMS}ml/members/").status_code == 200
    before = snapshot()
    assert api.post(TEAMS, {"slug": "mine"}).status_code == 403
    assert api.patch(f"{TEAMS}ml/", {"name": "Mine"}).status_code == 403
    assert api.delete(f"{TEAMS}ml/").status_code == 403
    assert api.post(f"{TEAMS}ml/members/", {"handle": "viewer-user"}).status_code == 403
    assert api.delete(f"{TEAMS}ml/members/member-user/").status_code == 403
    assert snapshot() == before


def test_team_changes_need_an_admin_token(world, client_as, team):
    api = client_as("owner", scope=TokenScope.WRITE)
    before = snapshot()
    assert api.post(TEAMS, {"slug": "infra"}).status_code == 403
    assert api.post(f"{TEAMS}ml/members/", {"handle": "viewer-user"}).status_code == 403
    assert snapshot() == before


def test_an_admin_adds_and_removes_team_members(world, client_as, team):
    api = client_as("admin")
    added = api.post(f"{TEAMS}ml/members/", {"handle": "Viewer-User"})
    assert added.status_code == 201, added.data
    assert added.data == {"handle": "viewer-user", "name": world.user("viewer").name}
    assert [u["handle"] for u in api.get(f"{TEAMS}ml/members/").data["results"]] == ["member-user", "viewer-user"]
    assert [u["handle"] for u in api.get(f"{TEAMS}ml/members/", {"search": "view"}).data["results"]] == ["viewer-user"]
    assert api.delete(f"{TEAMS}ml/members/viewer-user/").status_code == 204
    assert [u["handle"] for u in api.get(f"{TEAMS}ml/members/").data["results"]] == ["member-user"]


def test_only_members_of_the_organization_can_join_its_teams(world, client_as, team):
    before = snapshot()
    answer = client_as("admin").post(f"{TEAMS}ml/members/", {"handle": "outsider-user"})
    assert answer.status_code == 400
    assert answer.data["codes"] == {"handle": ["not_a_member"]}
    assert "invite them first" in answer.data["handle"][0]
    assert snapshot() == before


def test_adding_someone_twice_or_an_unknown_user_is_refused(world, client_as, team):
    before = snapshot()
    twice = client_as("admin").post(f"{TEAMS}ml/members/", {"handle": "member-user"})
    assert twice.status_code == 400
    assert twice.data["codes"] == {"handle": ["already_in_team"]}
    unknown = client_as("admin").post(f"{TEAMS}ml/members/", {"handle": "nobody-at-all"})
    assert unknown.status_code == 400
    assert unknown.data["codes"] == {"handle": ["unknown_user"]}
    assert snapshot() == before


def test_removing_someone_not_in_the_team_answers_404(world, client_as, team):
    assert client_as("admin").delete(f"{TEAMS}ml/members/viewer-user/").status_code == 404


def test_the_team_list_filters_by_member(world, client_as, team):
    services.create_team(actor=world.user("admin"), organization=world.org, slug="infra")
    api = client_as("viewer")
    assert [t["slug"] for t in api.get(TEAMS, {"member": "member-user"}).data["results"]] == ["ml"]
    assert [t["slug"] for t in api.get(TEAMS, {"ordering": "-slug"}).data["results"]] == ["ml", "infra"]
    members = client_as("viewer").get("/api/v1/orgs/acme/members/", {"team": "ml"}).data["results"]
    assert [m["handle"] for m in members] == ["member-user"]


def test_an_outsider_gets_404_on_teams_of_a_private_organization(world, client_as, team):
    api = client_as("outsider")
    for url in (TEAMS, f"{TEAMS}ml/", f"{TEAMS}ml/members/"):
        assert api.get(url).status_code == 404
    assert api.post(TEAMS, {"slug": "x"}).status_code == 404
    assert api.post(f"{TEAMS}ml/members/", {"handle": "outsider-user"}).status_code == 404
    assert api.delete(f"{TEAMS}ml/members/member-user/").status_code == 404


def test_a_team_grant_reaches_its_members_through_restrict(world, team):
    from guardian.shortcuts import assign_perm

    from apps.organizations.models import Organization

    other = OrganizationFactory(slug="globex")
    assign_perm("view_organization", team.group, other)
    assert Organization.objects.restrict(world.user("member"), "view").filter(slug="globex").exists()
    assert not Organization.objects.restrict(world.user("viewer"), "view").filter(slug="globex").exists()
