"""Token scopes on the catalog: a read token reads and downloads, a write token changes; a token bound to an
organization changes only that organization's models."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.models import TokenScope
from tests.factories import MembershipFactory, OrganizationFactory
from tests.marketplace.conftest import file_url, version_url

pytestmark = pytest.mark.django_db


def test_a_read_token_downloads_but_does_not_change(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    catalog.version(model, "2.0")
    client = catalog.client("member", scope=TokenScope.READ)
    assert client.get(file_url(model, "1.0", "model.onnx")).status_code == 200
    assert client.get(version_url(model, "1.0", "links/model.onnx")).status_code == 200
    refused = [
        client.patch("/api/v1/models/acme/iris/", {"summary": "x"}, format="json"),
        client.post("/api/v1/models/acme/iris/versions/", {"label": "3.0"}, format="json"),
        client.post(
            version_url(model, "2.0", "files/"), {"file": SimpleUploadedFile("a.txt", b"a")}, format="multipart"
        ),
        client.post(version_url(model, "2.0", "uploads/"), {"path": "a", "size": 1, "sha256": "0" * 64}, format="json"),
        client.put("/api/v1/models/acme/iris/aliases/", {"name": "prod", "version": "1.0"}, format="json"),
        client.post(version_url(model, "2.0", "publish/")),
    ]
    assert [response.status_code for response in refused] == [403] * len(refused)
    assert all(response.json()["code"] == "insufficient_scope" for response in refused)


def test_a_write_token_changes(catalog):
    catalog.model("iris")
    client = catalog.client("member", scope=TokenScope.WRITE)
    assert client.patch("/api/v1/models/acme/iris/", {"summary": "x"}, format="json").status_code == 200
    assert client.post("/api/v1/models/acme/iris/versions/", {"label": "1.0"}, format="json").status_code == 201


def test_a_token_bound_elsewhere_cannot_change_acmes_models(catalog):
    catalog.model("iris", visibility="public")
    elsewhere = OrganizationFactory(slug="elsewhere")
    MembershipFactory(organization=elsewhere, user=catalog.world.user("member"))
    client = catalog.client("member", organization=elsewhere)
    assert client.get("/api/v1/models/acme/iris/").status_code == 200  # public: readable
    assert client.patch("/api/v1/models/acme/iris/", {"summary": "x"}, format="json").status_code == 403
    # acme is private: through this token it is not even visible
    assert client.post("/api/v1/orgs/acme/models/", {"name": "other"}, format="json").status_code == 404
    assert client.post("/api/v1/orgs/elsewhere/models/", {"name": "other"}, format="json").status_code == 201
