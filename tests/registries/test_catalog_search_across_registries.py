"""One catalog over every source: search finds synced and uploaded models alike, with the source as a facet, and
a synced model has the same model page as any other (plus where it came from)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.marketplace.models import Model
from apps.registries.models import Registry
from tests.conftest import api_client_for
from tests.registries.support import ScriptedBackend, make_registry, run_sync, scripted_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(world):
    owner = world.user("owner")
    ScriptedBackend.CATALOGS["hub"] = [scripted_model("hub/bert-sentiment"), scripted_model("hub/resnet")]
    ScriptedBackend.CATALOGS["zoo"] = [scripted_model("zoo/bert-tiny")]
    run_sync(make_registry(world.org, owner, slug="hub", model_visibility="internal"))
    run_sync(make_registry(world.org, owner, slug="zoo", model_visibility="internal"))
    Model.objects.create(organization=world.org, name="bert-uploaded", summary="Our own BERT", visibility="internal")
    client = Client()
    client.force_login(world.user("viewer"))
    return client


def names(response) -> set[str]:
    return {model.name for model in response.context["page_obj"].object_list}


def test_a_search_finds_models_of_every_registry_and_uploads(catalog):
    response = catalog.get(reverse("catalog-models"), {"q": "bert"})
    assert names(response) == {"hub.bert-sentiment", "zoo.bert-tiny", "bert-uploaded"}


def test_the_source_facet_counts_and_filters_by_registry(catalog):
    response = catalog.get(reverse("catalog-models"))
    assert dict(response.context["facets"]["sources"]) == {"hub": 2, "zoo": 1, "uploaded": 1}
    assert names(catalog.get(reverse("catalog-models"), {"source": "hub"})) == {"hub.bert-sentiment", "hub.resnet"}
    assert names(catalog.get(reverse("catalog-models"), {"source": "uploaded", "q": "bert"})) == {"bert-uploaded"}


def test_the_api_filters_by_source_too(catalog, world):
    body = api_client_for(world.user("viewer")).get(reverse("api:model-list"), {"source": "zoo"}).json()
    assert [model["name"] for model in body["results"]] == ["zoo.bert-tiny"]


def test_a_synced_model_page_says_where_it_came_from_and_when_it_went_away(catalog, world):
    page = catalog.get(reverse("catalog-model", kwargs={"owner": "acme", "name": "hub.resnet"}))
    assert page.status_code == 200
    assert b"from hub: hub/resnet" in page.content and b"removed upstream" not in page.content

    ScriptedBackend.CATALOGS["hub"].pop()  # hub/resnet is gone upstream
    run_sync(Registry.objects.get(slug="hub"))
    page = catalog.get(reverse("catalog-model", kwargs={"owner": "acme", "name": "hub.resnet"}))
    assert b'id="model-removed-upstream"' in page.content
