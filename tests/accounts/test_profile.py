"""/api/v1/user/: one's profile. Renaming the handle renames the personal organization with it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.services import update_profile
from apps.audit.models import AuditEvent
from apps.organizations.models import Organization
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

PROFILE = reverse("api:user-detail")


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_the_profile_shows_the_caller():
    user = UserFactory(handle="ada", email="ada@example.com", name="Ada")
    body = session_client(user).get(PROFILE).json()
    assert body["handle"] == "ada"
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada"
    assert body["uuid"] == str(user.uuid)


def test_anonymous_callers_get_401():
    assert APIClient().get(PROFILE).status_code == 401
    assert APIClient().patch(PROFILE, {"name": "x"}).status_code == 401


def test_renaming_the_handle_renames_the_personal_organization():
    user = UserFactory(handle="ada", name="Ada")
    personal = user.personal_organization
    response = session_client(user).patch(PROFILE, {"handle": "ada-lovelace"})
    assert response.status_code == 200, response.json()
    assert response.json()["handle"] == "ada-lovelace"
    user.refresh_from_db()
    personal.refresh_from_db()
    assert user.handle == "ada-lovelace"
    assert personal.slug == "ada-lovelace"
    assert not Organization.objects.filter(slug="ada").exists()


def test_a_handle_rename_is_audited_in_the_personal_chain():
    user = UserFactory(handle="ada")
    session_client(user).patch(PROFILE, {"handle": "ada-l"})
    event = AuditEvent.objects.get(action="user.updated")
    assert event.organization == user.personal_organization
    assert event.actor == user
    assert event.diff == {"handle": ["ada", "ada-l"]}
    org_event = AuditEvent.objects.get(action="organization.updated")
    assert org_event.diff["slug"] == ["ada", "ada-l"]


def test_the_old_handle_is_free_again_after_a_rename():
    user = UserFactory(handle="ada")
    session_client(user).patch(PROFILE, {"handle": "ada-l"})
    other = UserFactory(handle="babbage")
    assert session_client(other).patch(PROFILE, {"handle": "ada"}).status_code == 200


def test_changing_the_name_renames_a_personal_organization_still_named_after_its_owner():
    user = UserFactory(handle="ada", name="Ada")
    assert user.personal_organization.name == "Ada"
    response = session_client(user).patch(PROFILE, {"name": "  Ada Lovelace  "})
    assert response.status_code == 200
    assert response.json()["name"] == "Ada Lovelace"
    user.personal_organization.refresh_from_db()
    assert user.personal_organization.name == "Ada Lovelace"


def test_an_upper_case_handle_is_stored_lower_case():
    user = UserFactory(handle="ada")
    response = session_client(user).patch(PROFILE, {"handle": "Ada-Two"})
    assert response.status_code == 200
    assert response.json()["handle"] == "ada-two"


def test_patching_the_same_handle_changes_and_records_nothing():
    user = UserFactory(handle="ada")
    client = session_client(user)
    before = AuditEvent.objects.count()
    assert client.patch(PROFILE, {"handle": "ada"}).status_code == 200
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    ("handle", "reason"),
    [
        ("admin", "reserved"),
        ("api", "reserved"),
        ("a", "valid name"),
        ("-ada", "valid name"),
        ("ada-", "valid name"),
        ("ada--l", "valid name"),
        ("ada_l", "valid name"),
        ("ada l", "valid name"),
        ("ádá", "valid name"),
        ("x" * 40, "39 characters"),
        ("", "blank"),
    ],
)
def test_a_bad_handle_answers_400_naming_the_handle_and_why(handle, reason):
    user = UserFactory(handle="ada")
    response = session_client(user).patch(PROFILE, {"handle": handle})
    assert response.status_code == 400
    body = response.json()
    assert list(body["codes"]) == ["handle"]
    assert reason in body["handle"][0]
    user.refresh_from_db()
    assert user.handle == "ada"
    assert user.personal_organization.slug == "ada"


def test_a_handle_taken_by_another_user_is_refused():
    UserFactory(handle="babbage")
    user = UserFactory(handle="ada")
    response = session_client(user).patch(PROFILE, {"handle": "babbage"})
    assert response.status_code == 400
    assert response.json()["codes"]["handle"] == ["taken"]
    user.refresh_from_db()
    assert user.handle == "ada"


def test_a_handle_taken_by_an_organization_is_refused():
    OrganizationFactory(slug="analytical-engines")
    user = UserFactory(handle="ada")
    response = session_client(user).patch(PROFILE, {"handle": "analytical-engines"})
    assert response.status_code == 400
    assert response.json()["codes"]["handle"] == ["taken"]
    assert "already taken" in response.json()["handle"][0]
    user.refresh_from_db()
    assert user.handle == "ada"
    assert not AuditEvent.objects.filter(action="user.updated").exists()


def test_a_name_too_long_is_refused():
    user = UserFactory(name="Ada")
    response = session_client(user).patch(PROFILE, {"name": "x" * 151})
    assert response.status_code == 400
    assert "name" in response.json()["codes"]


def test_the_email_cannot_be_changed_here():
    user = UserFactory(email="ada@example.com")
    response = session_client(user).patch(PROFILE, {"email": "other@example.com"})
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.email == "ada@example.com"


def test_put_is_not_offered():
    user = UserFactory()
    assert session_client(user).put(PROFILE, {"name": "x", "handle": "xx"}).status_code == 405


def test_a_user_without_a_personal_organization_gets_one_when_renaming():
    user = UserFactory(handle="ada")
    Organization.objects.filter(personal_owner=user).delete()
    update_profile(user=user, handle="ada-two")
    assert Organization.objects.get(personal_owner=user).slug == "ada-two"
