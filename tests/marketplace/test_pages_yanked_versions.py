"""Yanked versions on the pages follow the backend's rule: hidden from those who may not change the model
(left out of the versions table, the version page answers 410 with the reason), shown to its members, and
still available to someone who downloaded that exact version before."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.access import Visibility
from apps.marketplace import services
from tests.conftest import api_client_for
from tests.marketplace.conftest import file_url


@pytest.fixture
def yanked(catalog, world):
    model = catalog.model("iris", visibility=Visibility.PUBLIC)
    version = catalog.published(model, "1.0.0")
    catalog.published(model, "1.1.0")
    return model, version


def yank(world, version) -> None:
    services.yank_version(version=version, actor=world.user("admin"), reason="Trained on the wrong labels.")


def client_of(world, persona: str) -> Client:
    client = Client()
    if persona != "anonymous":
        client.force_login(world.user(persona))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("persona", "shown"), [("member", True), ("viewer", False), ("outsider", False)])
def test_a_yanked_version_is_left_out_of_the_versions_table_for_those_who_may_not_change_the_model(
    world, yanked, persona, shown
):
    model, version = yanked
    yank(world, version)
    response = client_of(world, persona).get(reverse("catalog-model", args=[world.org.slug, model.name]))
    assert response.status_code == 200
    labels = [v.label for v in response.context["versions"]]
    assert ("1.0.0" in labels) == shown
    assert "1.1.0" in labels


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["viewer", "outsider", "anonymous"])
def test_a_yanked_version_page_answers_410_with_the_reason_to_new_users(world, yanked, persona):
    model, version = yanked
    yank(world, version)
    response = client_of(world, persona).get(reverse("catalog-version", args=[world.org.slug, model.name, "1.0.0"]))
    assert response.status_code == 410
    assert "Trained on the wrong labels." in response.content.decode()


@pytest.mark.django_db
def test_someone_who_downloaded_the_version_before_still_sees_it(world, yanked):
    model, version = yanked
    downloaded = api_client_for(world.user("outsider")).get(file_url(model, "1.0.0", "model.onnx"))
    assert downloaded.status_code == 200
    yank(world, version)
    response = client_of(world, "outsider").get(reverse("catalog-version", args=[world.org.slug, model.name, "1.0.0"]))
    assert response.status_code == 200
    assert 'id="yanked-notice"' in response.content.decode()


@pytest.mark.django_db
def test_members_see_the_yanked_version_page_with_its_reason(world, yanked):
    model, version = yanked
    yank(world, version)
    response = client_of(world, "member").get(reverse("catalog-version", args=[world.org.slug, model.name, "1.0.0"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="yanked-notice"' in html and "Trained on the wrong labels." in html
