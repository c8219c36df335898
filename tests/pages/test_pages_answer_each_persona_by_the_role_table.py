"""Every page answers each persona as DESIGN.md's role table says (written from the table, not the code).

200: allowed · 403: may view the organization but the page needs more · 404: may not view the organization
(private) · login: an anonymous caller is sent to sign in.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from apps.core.access import Visibility
from apps.core.job_services import start_job
from apps.organizations import services

PERSONAS = ("owner", "admin", "member", "viewer", "outsider", "anonymous")
OK, FORBIDDEN, NOT_FOUND, LOGIN = 200, 403, 404, "login"

# page name -> expected answer per persona, in PERSONAS order, for the private organization "acme".
EVERY_MEMBER = (OK, OK, OK, OK, NOT_FOUND, LOGIN)
ADMINS = (OK, OK, FORBIDDEN, FORBIDDEN, NOT_FOUND, LOGIN)
OWNERS = (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, NOT_FOUND, LOGIN)
SIGNED_IN = (OK, OK, OK, OK, OK, LOGIN)

ORGANIZATION_PAGES = {
    "org-overview": EVERY_MEMBER,
    "org-members": EVERY_MEMBER,
    "org-teams": EVERY_MEMBER,
    "org-jobs": EVERY_MEMBER,
    "org-invitations": ADMINS,
    "org-tokens": ADMINS,
    "org-audit": ADMINS,
    "org-settings": OWNERS,
}
ACCOUNT_PAGES = (
    "account-profile",
    "account-tokens",
    "org-create",
    "account_email",
    "account_change_password",
    "mfa_index",
)


def expect(response, expected) -> None:
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse(settings.LOGIN_URL))
    else:
        assert response.status_code == expected, response.content[:500]


@pytest.mark.django_db
@pytest.mark.parametrize("page", sorted(ORGANIZATION_PAGES))
@pytest.mark.parametrize("persona", PERSONAS)
def test_organization_page_answers_persona_as_the_role_table_says(world, page_client, page, persona):
    response = page_client(persona).get(reverse(page, args=[world.org.slug]))
    expect(response, ORGANIZATION_PAGES[page][PERSONAS.index(persona)])


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_team_page_answers_every_member_and_hides_from_outsiders(world, page_client, persona):
    services.create_team(actor=world.user("owner"), organization=world.org, slug="vision")
    response = page_client(persona).get(reverse("org-team", args=[world.org.slug, "vision"]))
    expect(response, EVERY_MEMBER[PERSONAS.index(persona)])


@pytest.mark.django_db
@pytest.mark.parametrize("page", ACCOUNT_PAGES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_account_page_needs_sign_in_only(world, page_client, page, persona):
    response = page_client(persona).get(reverse(page))
    expect(response, SIGNED_IN[PERSONAS.index(persona)])


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_home_page_is_the_dashboard_signed_in_and_the_landing_page_signed_out(world, page_client, persona):
    response = page_client(persona).get(reverse("home"))
    assert response.status_code == 200
    if persona == "anonymous":
        assert b"Create an account" in response.content
    else:
        assert b"Your organizations" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "expected"),
    # The creator (admin here) and the organization's admins and owners see a job; others get 404.
    list(zip(PERSONAS, (OK, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, LOGIN), strict=True)),
)
def test_job_page_shows_to_its_creator_and_the_admins_only(world, page_client, persona, expected):
    job = start_job(kind="audit.export", organization=world.org, creator=world.user("admin"), params={"format": "csv"})
    expect(page_client(persona).get(reverse("job-detail", args=[job.uuid])), expected)
    expect(page_client(persona).get(reverse("job-progress", args=[job.uuid])), expected)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("page", "expected"),
    # On a public organization anyone may view it, its members and its teams, but not the pages that need a role.
    [("org-overview", OK), ("org-members", OK), ("org-teams", OK), ("org-invitations", FORBIDDEN),
     ("org-tokens", FORBIDDEN), ("org-audit", FORBIDDEN), ("org-settings", FORBIDDEN), ("org-jobs", OK)],
)  # fmt: skip
def test_outsider_on_a_public_organization_gets_403_where_a_role_is_needed(world, page_client, page, expected):
    services.update_organization(actor=world.user("owner"), organization=world.org, visibility=Visibility.PUBLIC)
    expect(page_client("outsider").get(reverse(page, args=[world.org.slug])), expected)


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["org-overview", "org-members", "org-teams"])
def test_anonymous_visitor_sees_a_public_organization_and_its_people(world, page_client, page):
    services.update_organization(actor=world.user("owner"), organization=world.org, visibility=Visibility.PUBLIC)
    response = page_client("anonymous").get(reverse(page, args=[world.org.slug]))
    assert response.status_code == 200
    assert b"Acme" in response.content


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_sign_in_before_changing_anything(world, page_client):
    services.update_organization(actor=world.user("owner"), organization=world.org, visibility=Visibility.PUBLIC)
    expect(page_client("anonymous").post(reverse("org-teams", args=[world.org.slug]), {"slug": "x"}), LOGIN)


@pytest.mark.django_db
def test_outsider_of_a_public_organization_cannot_change_its_teams(world, page_client):
    services.update_organization(actor=world.user("owner"), organization=world.org, visibility=Visibility.PUBLIC)
    services.create_team(actor=world.user("owner"), organization=world.org, slug="vision")
    assert page_client("outsider").post(reverse("org-teams", args=["acme"]), {"slug": "x"}).status_code == 403
    response = page_client("outsider").post(reverse("org-team", args=["acme", "vision"]), {"slug": "renamed"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_unknown_organization_is_404_for_signed_in_and_login_for_anonymous(world, page_client):
    expect(page_client("member").get(reverse("org-overview", args=["no-such-org"])), NOT_FOUND)
    expect(page_client("anonymous").get(reverse("org-overview", args=["no-such-org"])), LOGIN)
