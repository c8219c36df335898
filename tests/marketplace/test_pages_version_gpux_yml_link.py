"""A version's page offers its gpux.yml for the GPUX CLI as a download once validation passed; the link is the
API route, which the signed-in session may follow."""

from __future__ import annotations

import pytest
import yaml
from django.test import Client
from django.urls import reverse

from apps.marketplace.validation import run_validation
from tests.marketplace.conftest import iris_bytes

pytestmark = pytest.mark.django_db


def page_of(version, persona: str, world):
    client = Client()
    client.force_login(world.user(persona))
    url = reverse("catalog-version", args=[version.model.organization.slug, version.model.name, version.label])
    return client, client.get(url)


def test_a_validated_version_page_links_its_gpux_yml_and_the_link_downloads_it(catalog, world):
    version = catalog.version(catalog.model("iris"))
    catalog.add(version, "model.onnx", iris_bytes())
    version.refresh_from_db()
    run_validation(version.validation_job)

    client, page = page_of(version, "member", world)  # a validated draft: those who may change the model

    assert page.status_code == 200
    link = reverse("api:model-version-manifest", args=["acme", "iris", "1.0.0"])
    assert f'id="download-gpux-yml" href="{link}" download="gpux.yml"' in page.content.decode()
    download = client.get(link)
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="gpux.yml"'
    assert yaml.safe_load(download.content)["inputs"]["float_input"]["shape"] == [3, 2]


def test_a_version_not_validated_yet_offers_no_gpux_yml(catalog, world):
    version = catalog.version(catalog.model("iris"))
    catalog.add(version, "model.onnx", iris_bytes())

    _client, page = page_of(version, "member", world)

    assert page.status_code == 200
    assert "download-gpux-yml" not in page.content.decode()
