"""The catalog page searches and filters (task, license, owner, tags), pages through many models, and says
plainly when there is nothing to show."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.access import Visibility
from apps.organizations.services import create_organization


@pytest.fixture
def shelf(catalog, world):
    catalog.model("iris", task="tabular-classification", license="mit", tags=["sklearn", "tabular"], summary="Flowers")
    catalog.model("minilm", task="feature-extraction", license="apache-2.0", tags=["nlp", "embeddings"])
    catalog.model("bert-ner", task="token-classification", license="apache-2.0", tags=["nlp"], card="Finds names")
    other = create_organization(creator=world.user("outsider"), slug="globex", name="Globex")
    catalog.model("yolo", organization=other, visibility=Visibility.PUBLIC, task="object-detection", tags=["vision"])


def names(world, **query) -> list[str]:
    client = Client()
    client.force_login(world.user("viewer"))
    response = client.get(reverse("catalog-models"), query)
    assert response.status_code == 200
    return sorted(model.name for model in response.context["page_obj"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["bert-ner", "iris", "minilm", "yolo"]),
        ({"q": "flowers"}, ["iris"]),
        ({"q": "names"}, ["bert-ner"]),
        ({"task": "feature-extraction"}, ["minilm"]),
        ({"license": "apache-2.0"}, ["bert-ner", "minilm"]),
        ({"owner": "globex"}, ["yolo"]),
        ({"tags": "nlp"}, ["bert-ner", "minilm"]),
        ({"tags": "nlp, embeddings"}, ["minilm"]),
        ({"tags": "nlp", "license": "apache-2.0", "q": "minilm"}, ["minilm"]),
        ({"sort": "name"}, ["bert-ner", "iris", "minilm", "yolo"]),
    ],
)
def test_the_catalog_finds_models_by_words_and_filters(world, shelf, query, expected):
    assert names(world, **query) == expected


@pytest.mark.django_db
def test_the_filters_offer_the_tasks_licenses_and_owners_the_caller_can_see(world, shelf):
    client = Client()
    client.force_login(world.user("viewer"))
    facets = client.get(reverse("catalog-models")).context["facets"]
    assert facets["owners"] == ["acme", "globex"]
    assert "feature-extraction" in facets["tasks"] and "object-detection" in facets["tasks"]
    assert facets["licenses"] == ["apache-2.0", "mit"]
    anonymous = Client().get(reverse("catalog-models")).context["facets"]
    assert anonymous["owners"] == ["globex"]  # acme's private models tell nothing about themselves


@pytest.mark.django_db
def test_the_catalog_pages_through_many_models(world, catalog):
    for number in range(23):
        catalog.model(f"model-{number:02d}")
    client = Client()
    client.force_login(world.user("viewer"))
    first = client.get(reverse("catalog-models"), {"sort": "name"})
    second = client.get(reverse("catalog-models"), {"sort": "name", "page": 2})
    assert len(first.context["page_obj"]) == 20 and len(second.context["page_obj"]) == 3
    assert "Page 1 of 2" in first.content.decode()
    seen = {m.name for m in first.context["page_obj"]} | {m.name for m in second.context["page_obj"]}
    assert len(seen) == 23


@pytest.mark.django_db
def test_an_empty_catalog_and_an_empty_search_say_so(world, catalog):
    client = Client()
    client.force_login(world.user("member"))
    empty = client.get(reverse("catalog-models")).content.decode()
    assert "No models yet" in empty and reverse("catalog-model-create", args=[world.org.slug]) in empty
    catalog.model("iris")
    nothing = client.get(reverse("catalog-models"), {"q": "no-such-model"}).content.decode()
    assert "No model matches" in nothing
