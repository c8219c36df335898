"""Issue #14 items 3 and 9: an organization's Models tab lists its models with the catalog's filters and offers
"New model" to those who may create one; its tabs follow what the role may do (every role sees Deployments, admins
their own tabs); an outsider of a public organization sees its public models only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.core.access import Visibility
from apps.marketplace import services as catalog

pytestmark = pytest.mark.django_db

MODELS = "/orgs/acme/models/"


@pytest.fixture
def models(world):
    member = world.user("member")
    private = catalog.create_model(
        organization=world.org, actor=member, name="secret-iris", task="tabular-classification"
    )
    public = catalog.create_model(
        organization=world.org,
        actor=member,
        name="open-minilm",
        visibility=Visibility.PUBLIC,
        task="feature-extraction",
    )
    return private, public


def tabs(html: str) -> str:
    return html.split('id="org-tabs"', 1)[1].split("</ul>", 1)[0]


def test_a_member_sees_the_models_tab_with_every_model_and_the_new_model_button(world, page_client, models):
    html = page_client("member").get(MODELS).content.decode()
    assert 'id="tab-models"' in tabs(html)
    assert "secret-iris" in html and "open-minilm" in html
    assert f'href="{reverse("catalog-model-create", args=["acme"])}" id="new-model"' in html
    assert 'id="catalog-owner"' not in html  # the owner is the page's organization


def test_a_viewer_sees_the_models_but_may_not_create_one(world, page_client, models):
    html = page_client("viewer").get(MODELS).content.decode()
    assert "secret-iris" in html
    assert 'id="new-model"' not in html


def test_the_catalogs_filters_apply_to_the_organizations_models(world, page_client, models):
    html = page_client("member").get(MODELS, {"task": "feature-extraction"}).content.decode()
    assert "open-minilm" in html and "secret-iris" not in html
    assert 'id="catalog-count">1 model<' in html
    html = page_client("member").get(MODELS, {"q": "iris"}).content.decode()
    assert "secret-iris" in html and "open-minilm" not in html
    assert f'href="{MODELS}">Clear</a>' in html


def test_an_outsider_of_a_public_organization_sees_its_public_models_only(world, page_client, models):
    world.org.visibility = Visibility.PUBLIC
    world.org.save(update_fields=["visibility"])
    for persona in ("outsider", "anonymous"):
        response = page_client(persona).get(MODELS)
        assert response.status_code == 200, persona
        html = response.content.decode()
        assert "open-minilm" in html and "secret-iris" not in html, persona
        assert 'id="new-model"' not in html
        assert 'id="tab-deployments"' not in tabs(html)


def test_a_private_organizations_models_are_not_found_by_an_outsider(world, page_client, models):
    assert page_client("outsider").get(MODELS).status_code == 404


@pytest.mark.parametrize("persona", ["viewer", "member"])
def test_every_role_has_a_deployments_tab_and_members_may_create_there(world, page_client, persona):
    html = page_client(persona).get(reverse("org-overview", args=["acme"])).content.decode()
    assert 'id="tab-deployments"' in tabs(html)
    assert "Invitations" not in tabs(html) and "Registries" not in tabs(html)
    listing = page_client(persona).get(reverse("org-deployments", args=["acme"])).content.decode()
    assert (reverse("org-deployment-create", args=["acme"]) in listing) == (persona == "member")


def test_admins_have_their_own_tabs_too(world, page_client):
    html = tabs(page_client("admin").get(reverse("org-overview", args=["acme"])).content.decode())
    for tab in ("Models", "Deployments", "Invitations", "Registries", "Audit trail"):
        assert tab in html, tab
    assert "Settings" not in html
