"""The base layout: a phone-friendly page with the user's menu, an organization switcher that lists only the
organizations the user belongs to, messages, pagination and empty states on lists, and static files served
from the vendored copies (no CDN)."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from apps.organizations import services
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def switcher(html: str) -> str:
    return html.split('aria-labelledby="org-switcher"', 1)[1].split("</ul>", 1)[0]


def test_switcher_lists_my_organizations_only(world, page_client):
    other = OrganizationFactory(slug="globex")
    MembershipFactory(organization=other, user=world.user("outsider"))
    html = page_client("member").get(reverse("home")).content.decode()
    menu = switcher(html)
    assert reverse("org-overview", args=["acme"]) in menu
    assert reverse("org-overview", args=["member-user"]) in menu
    assert "globex" not in menu


def test_switcher_marks_the_current_organization(world, page_client):
    html = page_client("member").get(reverse("org-members", args=["acme"])).content.decode()
    assert re.search(r'class="dropdown-item active" href="/orgs/acme/"', switcher(html))


def test_page_is_responsive_and_loads_no_cdn(world, page_client):
    html = page_client("member").get(reverse("home")).content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "navbar-toggler" in html
    for src in re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html):
        assert src.startswith("/static/"), src
        assert finders.find(src.removeprefix("/static/")), src


def test_vendored_libraries_carry_version_and_license():
    for folder in ("vendor/bootstrap-5.3.9", "vendor/htmx-2.0.11"):
        assert finders.find(f"{folder}/LICENSE")
        assert finders.find(f"{folder}/VERSION")


def test_user_menu_and_sign_out(world, page_client):
    html = page_client("member").get(reverse("home")).content.decode()
    assert "member-user" in html
    assert f'action="{reverse("account_logout")}"' in html


def test_messages_are_shown_after_an_action(world, page_client):
    response = page_client("admin").post(reverse("org-teams", args=["acme"]), {"slug": "vision"}, follow=True)
    assert 'class="alert alert-success' in response.content.decode()
    assert "Team “vision” created." in response.content.decode()


def test_lists_paginate(world, page_client):
    for number in range(30):
        services.create_team(actor=world.user("admin"), organization=world.org, slug=f"team-{number:02d}")
    first = page_client("viewer").get(reverse("org-teams", args=["acme"]))
    assert len(first.context["page_obj"]) == 25
    assert "?page=2" in first.content.decode()
    second = page_client("viewer").get(reverse("org-teams", args=["acme"]), {"page": 2})
    assert len(second.context["page_obj"]) == 5
    assert page_client("viewer").get(reverse("org-teams", args=["acme"]), {"page": "x"}).status_code == 200


@pytest.mark.parametrize(
    ("page", "persona", "text"),
    [
        ("org-teams", "viewer", "No teams yet"),
        ("org-invitations", "admin", "No invitations yet"),
        ("org-tokens", "admin", "No tokens are bound"),
        ("org-jobs", "viewer", "No jobs to show"),
    ],
)
def test_empty_lists_say_so(world, page_client, page, persona, text):
    assert text in page_client(persona).get(reverse(page, args=["acme"])).content.decode()


def test_login_page_is_styled_by_the_portal(world, client):
    html = client.get(reverse("account_login")).content.decode()
    assert 'class="form-control' in html and "btn btn-primary" in html
    assert 'name="login"' in html
