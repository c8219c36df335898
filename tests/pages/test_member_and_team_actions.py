"""Members and teams from the pages: each button calls the service, which applies the role table."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.core.access import Role
from apps.organizations import services
from apps.organizations.models import Membership, Team

pytestmark = pytest.mark.django_db


def role(world, persona):
    return Membership.objects.get(organization=world.org, user=world.user(persona)).role


def test_admin_promotes_a_viewer_to_member(world, page_client):
    response = page_client("admin").post(reverse("org-member-role", args=["acme", "viewer-user"]), {"role": 20})
    assert response.status_code == 302
    assert role(world, "viewer") == Role.MEMBER


def test_admin_cannot_make_anyone_owner(world, page_client):
    response = page_client("admin").post(reverse("org-member-role", args=["acme", "viewer-user"]), {"role": 40})
    assert response.status_code == 403
    assert role(world, "viewer") == Role.VIEWER


def test_member_cannot_change_roles(world, page_client):
    response = page_client("member").post(reverse("org-member-role", args=["acme", "viewer-user"]), {"role": 20})
    assert response.status_code == 403
    assert role(world, "viewer") == Role.VIEWER


def test_outsider_gets_404_on_member_actions(world, page_client):
    response = page_client("outsider").post(reverse("org-member-remove", args=["acme", "viewer-user"]))
    assert response.status_code == 404
    assert Membership.objects.filter(organization=world.org, user=world.user("viewer")).exists()


def test_last_owner_cannot_be_demoted_and_is_told_why(world, page_client):
    client = page_client("owner")
    services.change_member_role(
        actor=world.user("owner"),
        membership=Membership.objects.get(organization=world.org, user=world.user("admin")),
        role=Role.OWNER,
    )
    services.leave_organization(user=world.user("admin"), organization=world.org)
    response = client.post(reverse("org-leave", args=["acme"]), follow=True)
    assert "last owner" in response.content.decode()
    assert role(world, "owner") == Role.OWNER


def test_admin_removes_a_member(world, page_client):
    response = page_client("admin").post(reverse("org-member-remove", args=["acme", "member-user"]))
    assert response.status_code == 302
    assert not Membership.objects.filter(organization=world.org, user=world.user("member")).exists()


def test_viewer_leaves(world, page_client):
    response = page_client("viewer").post(reverse("org-leave", args=["acme"]))
    assert response.status_code == 302
    assert not Membership.objects.filter(organization=world.org, user=world.user("viewer")).exists()


def test_members_page_searches_and_paginates(world, page_client):
    response = page_client("viewer").get(reverse("org-members", args=["acme"]), {"q": "adm"})
    assert [m.user.handle for m in response.context["page_obj"]] == ["admin-user"]
    empty = page_client("viewer").get(reverse("org-members", args=["acme"]), {"q": "zzz"})
    assert "No member matches" in empty.content.decode()


def test_admin_makes_a_team_and_fills_it(world, page_client):
    client = page_client("admin")
    response = client.post(reverse("org-teams", args=["acme"]), {"slug": "vision", "name": "Vision"})
    assert response.status_code == 302
    team = Team.objects.get(organization=world.org, slug="vision")
    client.post(reverse("org-team-member-add", args=["acme", "vision"]), {"handle": "member-user"})
    assert list(services.team_members(team).values_list("handle", flat=True)) == ["member-user"]
    page = page_client("viewer").get(reverse("org-team", args=["acme", "vision"]))
    assert "member-user" in page.content.decode()
    client.post(reverse("org-team-member-remove", args=["acme", "vision", "member-user"]))
    assert not services.team_members(team).exists()


def test_adding_an_outsider_to_a_team_is_refused_on_the_handle_field(world, page_client):
    services.create_team(actor=world.user("admin"), organization=world.org, slug="vision")
    response = page_client("admin").post(
        reverse("org-team-member-add", args=["acme", "vision"]), {"handle": "outsider-user"}
    )
    assert response.status_code == 400
    assert "not a member" in response.content.decode()


def test_member_cannot_create_teams(world, page_client):
    response = page_client("member").post(reverse("org-teams", args=["acme"]), {"slug": "vision"})
    assert response.status_code == 403
    assert not Team.objects.filter(slug="vision").exists()


def test_admin_renames_and_deletes_a_team(world, page_client):
    services.create_team(actor=world.user("admin"), organization=world.org, slug="vision")
    client = page_client("admin")
    response = client.post(reverse("org-team", args=["acme", "vision"]), {"slug": "sight", "name": "Sight"})
    assert response.status_code == 302
    assert Team.objects.filter(slug="sight").exists()
    client.post(reverse("org-team-delete", args=["acme", "sight"]))
    assert not Team.objects.filter(organization=world.org).exists()


def test_owner_changes_settings_and_deletes_the_organization(world, page_client):
    client = page_client("owner")
    response = client.post(
        reverse("org-settings", args=["acme"]),
        {"slug": "acme", "name": "Acme Labs", "description": "d", "visibility": "internal"},
    )
    assert response.status_code == 302
    world.org.refresh_from_db()
    assert (world.org.name, world.org.visibility) == ("Acme Labs", "internal")
    refused = client.post(reverse("org-delete", args=["acme"]), {"confirm_slug": "wrong"})
    assert refused.status_code == 302
    world.org.refresh_from_db()
    client.post(reverse("org-delete", args=["acme"]), {"confirm_slug": "acme"})
    assert not type(world.org).objects.filter(slug="acme").exists()


def test_admin_cannot_post_settings(world, page_client):
    response = page_client("admin").post(
        reverse("org-settings", args=["acme"]), {"slug": "acme", "name": "Hijacked", "visibility": "public"}
    )
    assert response.status_code == 403
    world.org.refresh_from_db()
    assert world.org.name == "Acme"
