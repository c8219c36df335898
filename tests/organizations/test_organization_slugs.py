"""Organization slugs and user handles share one namespace: malformed, reserved and taken names are refused,
case-insensitively, when creating and when renaming, and nothing is written."""

from __future__ import annotations

import pytest

from tests.factories import OrganizationFactory, UserFactory
from tests.organizations.conftest import snapshot

pytestmark = pytest.mark.django_db

ORGS = "/api/v1/orgs/"


@pytest.mark.parametrize(
    "slug",
    ["a", "-acme", "acme-", "ac--me", "ac_me", "ac me", "acme!", "ａcme", "x" * 40, ""],
    ids=[
        "too-short",
        "leading-hyphen",
        "trailing-hyphen",
        "double-hyphen",
        "underscore",
        "space",
        "punctuation",
        "unicode",
        "too-long",
        "blank",
    ],
)
def test_a_malformed_slug_is_refused(world, client_as, slug):
    before = snapshot()
    answer = client_as("member").post(ORGS, {"slug": slug, "name": "New"})
    assert answer.status_code == 400, answer.data
    assert "slug" in answer.data
    assert snapshot() == before


@pytest.mark.parametrize("slug", ["admin", "api", "orgs", "static", "Settings", "INVITATIONS"])
def test_a_reserved_slug_is_refused_whatever_its_case(world, client_as, slug):
    before = snapshot()
    answer = client_as("member").post(ORGS, {"slug": slug, "name": "New"})
    assert answer.status_code == 400
    assert answer.data["codes"] == {"slug": ["reserved"]}
    assert "reserved" in answer.data["slug"][0]
    assert snapshot() == before


def test_a_slug_taken_by_another_organization_is_refused(world, client_as):
    before = snapshot()
    answer = client_as("member").post(ORGS, {"slug": "acme", "name": "Acme again"})
    assert answer.status_code == 400
    assert answer.data["codes"] == {"slug": ["taken"]}
    assert snapshot() == before


def test_a_slug_taken_by_another_organization_is_refused_case_insensitively(world, client_as):
    answer = client_as("member").post(ORGS, {"slug": "ACME", "name": "Acme again"})
    assert answer.status_code == 400
    assert answer.data["codes"] == {"slug": ["taken"]}


def test_a_slug_taken_by_a_users_handle_is_refused(world, client_as):
    UserFactory(handle="grace")
    before = snapshot()
    for slug in ("grace", "Grace"):
        answer = client_as("member").post(ORGS, {"slug": slug, "name": "Grace's"})
        assert answer.status_code == 400
        assert answer.data["codes"] == {"slug": ["taken"]}
        assert "user or an organization" in answer.data["slug"][0]
    assert snapshot() == before


def test_an_upper_case_slug_is_stored_lower_case(world, client_as):
    answer = client_as("member").post(ORGS, {"slug": "Deep-Vision", "name": "Deep Vision"})
    assert answer.status_code == 201
    assert answer.data["slug"] == "deep-vision"


def test_renaming_to_a_taken_reserved_or_malformed_slug_is_refused(world, client_as):
    OrganizationFactory(slug="globex")
    UserFactory(handle="grace")
    before = snapshot()
    for slug, code in [
        ("globex", "taken"),
        ("GLOBEX", "taken"),
        ("grace", "taken"),
        ("admin", "reserved"),
        ("-x", "invalid_slug"),
    ]:
        answer = client_as("owner").patch("/api/v1/orgs/acme/", {"slug": slug})
        assert answer.status_code == 400, (slug, answer.data)
        assert answer.data["codes"] == {"slug": [code]}, slug
    assert snapshot() == before


def test_an_owner_renames_the_organization(world, client_as):
    answer = client_as("owner").patch("/api/v1/orgs/acme/", {"slug": "acme-corp"})
    assert answer.status_code == 200, answer.data
    assert answer.data["slug"] == "acme-corp"
    assert client_as("owner").get("/api/v1/orgs/acme-corp/").status_code == 200
    assert client_as("owner").get("/api/v1/orgs/acme/").status_code == 404


def test_keeping_the_same_slug_in_another_case_is_not_taken_by_itself(world, client_as):
    answer = client_as("owner").patch("/api/v1/orgs/acme/", {"slug": "ACME", "name": "Acme Inc"})
    assert answer.status_code == 200, answer.data
    assert answer.data["slug"] == "acme"


def test_a_personal_organization_is_not_renamed_here(world, client_as):
    owner = world.user("owner")
    before = snapshot()
    answer = client_as("owner").patch(f"/api/v1/orgs/{owner.handle}/", {"slug": "new-name"})
    assert answer.status_code == 400
    assert answer.data["codes"] == {"slug": ["personal_organization"]}
    assert "handle" in answer.data["slug"][0]
    assert snapshot() == before
