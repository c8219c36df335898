"""Every download passes restrict(): outsiders get 404 for a private model's files, by label, alias or content
address; internal models need a verified signed-in user; public ones are open to anyone."""

from __future__ import annotations

import pytest

from apps.core.access import Visibility
from apps.marketplace import services
from tests.factories import UserFactory
from tests.marketplace.conftest import api_client_for, file_url, iris_bytes, sha256_of

pytestmark = pytest.mark.django_db


def _setup(catalog, visibility):
    model = catalog.model("iris", visibility=visibility)
    version = catalog.published(model, "1.0")
    services.set_alias(model=model, actor=catalog.world.user("member"), name="production", version=version)
    return model


def _urls(model):
    return [
        file_url(model, "1.0", "model.onnx"),
        "/api/v1/models/acme/iris/aliases/production/files/model.onnx",
        f"/api/v1/blobs/sha256/{sha256_of(iris_bytes())}",
        "/api/v1/models/acme/iris/versions/1.0/files/",
    ]


@pytest.mark.parametrize("persona", ["outsider", "anonymous"])
def test_outsiders_get_404_on_a_private_models_files(catalog, persona):
    model = _setup(catalog, Visibility.PRIVATE)
    for url in _urls(model):
        assert catalog.client(persona).get(url).status_code == 404, url


@pytest.mark.parametrize("persona", ["owner", "admin", "member", "viewer"])
def test_every_role_downloads_a_private_models_files(catalog, persona):
    model = _setup(catalog, Visibility.PRIVATE)
    for url in _urls(model):
        assert catalog.client(persona).get(url).status_code == 200, url


def test_internal_models_are_for_verified_signed_in_users(catalog):
    model = _setup(catalog, Visibility.INTERNAL)
    unverified = UserFactory(verified=False)
    for url in _urls(model):
        assert catalog.client("outsider").get(url).status_code == 200, url
        assert catalog.client("anonymous").get(url).status_code == 404, url
        assert api_client_for(unverified).get(url).status_code == 404, url


def test_public_models_are_open_to_anyone(catalog):
    model = _setup(catalog, Visibility.PUBLIC)
    for url in _urls(model):
        assert catalog.client("anonymous").get(url).status_code == 200, url


def test_a_deleted_models_files_are_gone(catalog):
    model = _setup(catalog, Visibility.PUBLIC)
    services.soft_delete_model(model=model, actor=catalog.world.user("admin"))
    for url in _urls(model):
        assert catalog.client("viewer").get(url).status_code == 404, url


def test_a_token_bound_to_another_organization_sees_only_public_files(catalog):
    from tests.factories import OrganizationFactory

    model = _setup(catalog, Visibility.PRIVATE)
    elsewhere = OrganizationFactory(slug="elsewhere")
    client = catalog.client("viewer", organization=elsewhere)
    for url in _urls(model):
        assert client.get(url).status_code == 404, url


def test_a_grant_on_a_private_model_reaches_its_versions_and_files(catalog):
    from guardian.shortcuts import assign_perm

    model = _setup(catalog, Visibility.PRIVATE)
    guest = UserFactory()
    client = api_client_for(guest)
    assert client.get(file_url(model, "1.0", "model.onnx")).status_code == 404
    assign_perm("view_model", guest, model)
    for url in _urls(model):
        assert client.get(url).status_code == 200, url
    assert client.post("/api/v1/models/acme/iris/versions/", {"label": "2.0"}, format="json").status_code == 403
    assign_perm("change_model", guest, model)
    assert client.post("/api/v1/models/acme/iris/versions/", {"label": "2.0"}, format="json").status_code == 201
