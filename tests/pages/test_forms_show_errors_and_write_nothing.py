"""Bad input in a page's form renders the form again (400) with the reason next to the field, and writes nothing:
no row, no audit event."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.models import ApiToken
from apps.audit.models import AuditEvent
from apps.organizations.models import Invitation, Organization, Team

pytestmark = pytest.mark.django_db


def events() -> int:
    """Events of organizations' chains (signing in writes to the platform chain, which is not what is counted)."""
    return AuditEvent.objects.exclude(organization=None).count()


def field_error(response, text: str) -> None:
    assert response.status_code == 400
    body = response.content.decode()
    assert "invalid-feedback" in body
    assert text in body


def test_creating_an_organization_with_a_reserved_slug_shows_the_error(world, page_client):
    before = (Organization.objects.count(), events())
    response = page_client("member").post(
        reverse("org-create"), {"slug": "admin", "name": "X", "visibility": "private"}
    )
    field_error(response, "reserved")
    assert (Organization.objects.count(), events()) == before


def test_creating_an_organization_with_a_taken_slug_shows_the_error(world, page_client):
    before = (Organization.objects.count(), events())
    response = page_client("member").post(reverse("org-create"), {"slug": "ACME", "name": "X", "visibility": "private"})
    field_error(response, "already taken")
    assert (Organization.objects.count(), events()) == before


def test_creating_an_organization_without_a_name_names_the_field(world, page_client):
    before = Organization.objects.count()
    response = page_client("member").post(reverse("org-create"), {"slug": "fine-slug", "name": "", "visibility": "x"})
    field_error(response, "This field is required")
    assert "Select a valid choice" in response.content.decode()
    assert Organization.objects.count() == before


def test_creating_an_organization_works_and_makes_the_creator_owner(world, page_client):
    response = page_client("viewer").post(
        reverse("org-create"), {"slug": "new-lab", "name": "New lab", "visibility": "private"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("org-overview", args=["new-lab"])
    assert Organization.objects.get(slug="new-lab").memberships.get().user == world.user("viewer")


def test_organization_settings_refuse_a_malformed_slug(world, page_client):
    before = events()
    response = page_client("owner").post(
        reverse("org-settings", args=["acme"]), {"slug": "-bad-", "name": "Acme", "visibility": "private"}
    )
    field_error(response, "slug")
    world.org.refresh_from_db()
    assert world.org.slug == "acme"
    assert events() == before


def test_invitation_with_a_bad_email_shows_the_error(world, page_client):
    before = (Invitation.objects.count(), events())
    response = page_client("admin").post(
        reverse("org-invitations", args=["acme"]), {"email": "not-an-address", "role": 20}
    )
    field_error(response, "e-mail")
    assert (Invitation.objects.count(), events()) == before


def test_invitation_of_an_existing_member_is_refused_on_the_email_field(world, page_client):
    before = Invitation.objects.count()
    response = page_client("admin").post(
        reverse("org-invitations", args=["acme"]), {"email": "member@acme.example", "role": 20}
    )
    field_error(response, "already a member")
    assert Invitation.objects.count() == before


def test_invitation_with_a_role_above_the_admins_own_is_not_offered(world, page_client):
    response = page_client("admin").post(
        reverse("org-invitations", args=["acme"]), {"email": "x@y.example", "role": 40}
    )
    field_error(response, "Select a valid choice")
    assert not Invitation.objects.filter(email="x@y.example").exists()


def test_team_with_a_malformed_slug_shows_the_error(world, page_client):
    before = (Team.objects.count(), events())
    response = page_client("admin").post(reverse("org-teams", args=["acme"]), {"slug": "Not Valid!", "name": ""})
    field_error(response, "valid team name")
    assert (Team.objects.count(), events()) == before


def test_profile_with_a_taken_handle_shows_the_error(world, page_client):
    before = events()
    response = page_client("member").post(reverse("account-profile"), {"name": "M", "handle": "owner-user"})
    field_error(response, "already taken")
    world.user("member").refresh_from_db()
    assert world.user("member").handle == "member-user"
    assert events() == before


def test_profile_with_a_reserved_handle_shows_the_error(world, page_client):
    response = page_client("member").post(reverse("account-profile"), {"name": "M", "handle": "api"})
    field_error(response, "reserved")


def test_profile_change_renames_the_handle_and_the_personal_organization(world, page_client):
    response = page_client("member").post(reverse("account-profile"), {"name": "Mia", "handle": "mia"})
    assert response.status_code == 302
    user = world.user("member")
    user.refresh_from_db()
    assert (user.name, user.handle) == ("Mia", "mia")
    assert Organization.objects.filter(slug="mia", personal_owner=user).exists()


def test_token_without_a_name_shows_the_error(world, page_client):
    before = (ApiToken.objects.count(), events())
    response = page_client("member").post(reverse("account-tokens"), {"name": "", "scope": 10})
    field_error(response, "This field is required")
    assert (ApiToken.objects.count(), events()) == before


def test_token_bound_with_a_scope_above_the_role_shows_the_error(world, page_client):
    before = ApiToken.objects.count()
    response = page_client("viewer").post(
        reverse("account-tokens"), {"name": "ci", "scope": 40, "organization": "acme"}
    )
    field_error(response, "at most")
    assert ApiToken.objects.count() == before


def test_token_with_an_expiry_in_the_past_shows_the_error(world, page_client):
    response = page_client("member").post(
        reverse("account-tokens"), {"name": "ci", "scope": 10, "expires_on": "2001-01-01"}
    )
    field_error(response, "future")
    assert not ApiToken.objects.filter(name="ci").exists()


def test_audit_filter_with_a_bad_date_answers_400_and_names_it(world, page_client):
    response = page_client("admin").get(reverse("org-audit", args=["acme"]), {"since": "yesterday-ish"})
    assert response.status_code == 400
    assert "invalid-feedback" in response.content.decode()
