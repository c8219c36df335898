"""The organization switcher lists the viewer's own organizations and names the page's organization as current only
when it is one of them: the page of a public (or internal) model of a private organization takes that organization
as the page's own, and an outsider must not read its display name there (it is not theirs to see), nor see a public
organization as theirs; a member still sees it marked as current."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.core.access import Visibility
from apps.marketplace import services as catalog
from tests.pages.test_base_layout import switcher

pytestmark = pytest.mark.django_db

SECRET_NAME = "Acme Skunkworks Division"


@pytest.fixture
def public_model_of_a_private_org(world):
    world.org.name = SECRET_NAME
    world.org.save(update_fields=["name"])
    assert world.org.visibility == Visibility.PRIVATE
    return catalog.create_model(
        organization=world.org, actor=world.user("member"), name="open-iris", visibility=Visibility.PUBLIC
    )


@pytest.mark.parametrize("visibility", [Visibility.PUBLIC, Visibility.INTERNAL])
def test_an_outsider_on_a_model_page_of_a_private_org_does_not_read_its_name(
    world, page_client, public_model_of_a_private_org, visibility
):
    public_model_of_a_private_org.visibility = visibility
    public_model_of_a_private_org.save(update_fields=["visibility"])
    response = page_client("outsider").get(reverse("catalog-model", args=["acme", "open-iris"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert SECRET_NAME not in html
    assert '<a class="nav-link dropdown-toggle" href="#" id="org-switcher"' in html
    toggle = html.split('id="org-switcher"', 1)[1].split("</a>", 1)[0]
    assert "Organizations" in toggle


def test_a_member_on_the_same_page_sees_the_organization_as_current(world, page_client, public_model_of_a_private_org):
    html = page_client("member").get(reverse("catalog-model", args=["acme", "open-iris"])).content.decode()
    toggle = html.split('id="org-switcher"', 1)[1].split("</a>", 1)[0]
    assert SECRET_NAME in toggle
    assert 'class="dropdown-item active" href="/orgs/acme/"' in switcher(html)


def test_a_public_organization_is_not_an_outsiders_current_one(world, page_client, public_model_of_a_private_org):
    """Issue #14 item 9: the switcher is the viewer's own organizations; another one, public or not, is never shown
    as theirs."""
    world.org.visibility = Visibility.PUBLIC
    world.org.save(update_fields=["visibility"])
    for url in (reverse("catalog-model", args=["acme", "open-iris"]), reverse("org-overview", args=["acme"])):
        html = page_client("outsider").get(url).content.decode()
        toggle = html.split('id="org-switcher"', 1)[1].split("</a>", 1)[0]
        assert SECRET_NAME not in toggle and "Organizations" in toggle, url
        assert "/orgs/acme/" not in switcher(html)  # listed only for its members
