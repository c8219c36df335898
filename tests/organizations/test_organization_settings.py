"""Creating, listing, changing and deleting organizations: anyone signed in creates one, owners change its
settings and delete it, admins and below get 403, outsiders 404; personal organizations stay."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from apps.accounts.models import TokenScope
from apps.organizations.models import Invitation, Membership, Organization, Team
from tests.organizations.conftest import actions, snapshot

pytestmark = pytest.mark.django_db

ACME = "/api/v1/orgs/acme/"


def test_a_signed_in_user_creates_an_organization_and_owns_it(world, client_as):
    answer = client_as("outsider", scope=TokenScope.WRITE).post(
        "/api/v1/orgs/", {"slug": "globex", "name": "Globex", "description": "Hi", "visibility": "internal"}
    )
    assert answer.status_code == 201, answer.data
    assert answer.data["role"] == "owner"
    assert answer.data["visibility"] == "internal"
    assert answer.data["is_personal"] is False
    organization = Organization.objects.get(slug="globex")
    assert Membership.objects.get(organization=organization).user == world.user("outsider")


def test_creating_an_organization_needs_a_write_token(world, client_as):
    before = snapshot()
    answer = client_as("outsider", scope=TokenScope.READ).post("/api/v1/orgs/", {"slug": "globex", "name": "G"})
    assert answer.status_code == 403
    assert snapshot() == before


def test_anonymous_cannot_create_an_organization(world, client_as):
    answer = client_as("anonymous").post("/api/v1/orgs/", {"slug": "globex", "name": "G"})
    assert answer.status_code in (401, 403)
    assert not Organization.objects.filter(slug="globex").exists()


def test_a_token_bound_to_an_organization_cannot_create_another(world, client_as):
    answer = client_as("owner", organization=world.org).post("/api/v1/orgs/", {"slug": "globex", "name": "G"})
    assert answer.status_code == 403
    assert answer.data["code"] == "token_binding"


def test_the_list_shows_what_the_caller_may_view_with_their_role(world, client_as):
    public = Organization.objects.create(slug="public-org", name="Public", visibility="public")
    slugs_roles = {o["slug"]: o["role"] for o in client_as("viewer").get("/api/v1/orgs/").data["results"]}
    assert slugs_roles["acme"] == "viewer"
    assert slugs_roles["viewer-user"] == "owner"
    assert slugs_roles[public.slug] is None
    assert "admin-user" not in slugs_roles
    anonymous = [o["slug"] for o in client_as("anonymous").get("/api/v1/orgs/").data["results"]]
    assert anonymous == ["public-org"]


def test_the_list_filters_by_membership_role_and_searches(world, client_as):
    Organization.objects.create(slug="public-org", name="Public", visibility="public")
    api = client_as("admin")
    assert [o["slug"] for o in api.get("/api/v1/orgs/", {"member": "true"}).data["results"]] == ["acme", "admin-user"]
    assert [o["slug"] for o in api.get("/api/v1/orgs/", {"role": "admin"}).data["results"]] == ["acme"]
    assert [o["slug"] for o in api.get("/api/v1/orgs/", {"search": "publ"}).data["results"]] == ["public-org"]
    assert [o["slug"] for o in api.get("/api/v1/orgs/", {"is_personal": "true"}).data["results"]] == ["admin-user"]
    ordered = [o["slug"] for o in api.get("/api/v1/orgs/", {"ordering": "-slug"}).data["results"]]
    assert ordered == sorted(ordered, reverse=True)
    assert api.get("/api/v1/orgs/", {"page_size": 1}).data["count"] == 3


def test_an_owner_changes_the_settings(world, client_as):
    answer = client_as("owner").patch(
        ACME, {"name": "Acme Inc", "description": "Rockets", "visibility": "internal", "require_mfa": True}
    )
    assert answer.status_code == 200, answer.data
    world.org.refresh_from_db()
    assert (world.org.name, world.org.description, world.org.visibility, world.org.require_mfa) == (
        "Acme Inc",
        "Rockets",
        "internal",
        True,
    )
    assert answer.data["role"] == "owner"


@pytest.mark.parametrize("persona", ["admin", "member", "viewer"])
def test_only_owners_change_the_settings_or_delete(world, client_as, persona):
    before = snapshot()
    assert client_as(persona).patch(ACME, {"name": "Hacked"}).status_code == 403
    assert client_as(persona).delete(ACME).status_code == 403
    assert snapshot() == before


def test_changing_settings_needs_an_admin_token(world, client_as):
    answer = client_as("owner", scope=TokenScope.WRITE).patch(ACME, {"name": "Acme Inc"})
    assert answer.status_code == 403
    world.org.refresh_from_db()
    assert world.org.name == "Acme"


def test_an_outsider_gets_404_on_a_private_organization(world, client_as):
    for method in ("get", "patch", "delete"):
        assert getattr(client_as("outsider"), method)(ACME).status_code == 404


def test_put_is_not_offered(world, client_as):
    assert client_as("owner").put(ACME, {"slug": "acme", "name": "Acme"}).status_code == 405


def test_an_owner_deletes_the_organization_with_its_teams_groups_and_invitations(world, client_as, team):
    from apps.organizations import services

    services.create_invitation(actor=world.user("owner"), organization=world.org, email="new@example.com")
    group_id = team.group_id
    answer = client_as("owner").delete(ACME)
    assert answer.status_code == 204
    assert not Organization.objects.filter(slug="acme").exists()
    assert not Team.objects.filter(pk=team.pk).exists()
    assert not Group.objects.filter(pk=group_id).exists()
    assert not Invitation.objects.filter(email="new@example.com").exists()
    assert actions(world.org)[-1] == "organization.deleted"
    assert actions(None)[-1] == "organization.deleted"


def test_a_personal_organization_cannot_be_deleted(world, client_as):
    owner = world.user("owner")
    before = snapshot()
    answer = client_as("owner").delete(f"/api/v1/orgs/{owner.handle}/")
    assert answer.status_code == 400
    assert answer.data["codes"] == {"organization": ["personal_organization"]}
    assert snapshot() == before


def test_the_answer_never_shows_another_users_personal_organization(world, client_as):
    assert client_as("member").get(f"/api/v1/orgs/{world.user('owner').handle}/").status_code == 404
