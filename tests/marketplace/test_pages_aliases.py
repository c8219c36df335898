"""Members point an alias at a published version from its page; the alias moves with its history kept, shows on
the model page, and a bad name or a draft is refused with a message."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.marketplace.models import Alias, AliasChange


@pytest.fixture
def member(world) -> Client:
    client = Client()
    client.force_login(world.user("member"))
    return client


def point(client: Client, label: str, name: str):
    return client.post(reverse("catalog-version-alias", args=["acme", "iris", label]), {"name": name}, follow=True)


@pytest.mark.django_db
def test_an_alias_moves_between_published_versions_and_keeps_its_history(member, catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0.0")
    catalog.published(model, "1.1.0")
    assert "Alias “production” now points at 1.0.0." in point(member, "1.0.0", "production").content.decode()
    point(member, "1.1.0", "production")
    alias = Alias.objects.get(model=model, name="production")
    assert alias.version.label == "1.1.0"
    assert [(c.from_label, c.to_label) for c in AliasChange.objects.filter(alias=alias)] == [
        ("1.0.0", "1.1.0"),
        ("", "1.0.0"),
    ]
    page = member.get(reverse("catalog-model", args=["acme", "iris"])).content.decode()
    assert "production" in page[page.index('id="alias-list"') :]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "message"), [("Not Valid!", "valid alias name"), ("", "valid alias name")])
def test_a_bad_alias_name_is_refused_with_a_message(member, catalog, name, message):
    catalog.published(catalog.model("iris"), "1.0.0")
    response = point(member, "1.0.0", name)
    assert message in response.content.decode()
    assert not Alias.objects.exists()


@pytest.mark.django_db
def test_an_alias_cannot_point_at_a_draft(member, catalog):
    catalog.version(catalog.model("iris"), "1.0.0")
    response = point(member, "1.0.0", "production")
    assert "An alias points at a published version" in response.content.decode()
    assert not Alias.objects.exists()
