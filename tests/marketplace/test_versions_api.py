"""Versions: labels unique per model, drafts that change, published versions that never do."""

from __future__ import annotations

import pytest

from apps.marketplace.models import ModelVersion
from tests.marketplace.conftest import file_url, iris_bytes, version_url

pytestmark = pytest.mark.django_db


def test_member_starts_a_draft_version(catalog):
    catalog.model("iris")
    response = catalog.client("member").post(
        "/api/v1/models/acme/iris/versions/", {"label": "1.0.0", "changelog": "First"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "draft"
    assert response.json()["validation_status"] == "none"


def test_viewer_may_not_start_a_version(catalog):
    catalog.model("iris")
    response = catalog.client("viewer").post("/api/v1/models/acme/iris/versions/", {"label": "1.0.0"}, format="json")
    assert response.status_code == 403


def test_a_version_label_that_already_exists_is_refused(catalog):
    model = catalog.model("iris")
    catalog.version(model, "1.0.0")
    response = catalog.client("member").post("/api/v1/models/acme/iris/versions/", {"label": "1.0.0"}, format="json")
    assert response.status_code == 400
    assert response.json()["codes"]["label"] == ["label_taken"]
    assert ModelVersion.objects.filter(model=model).count() == 1


@pytest.mark.parametrize("label", ["", "1.0.0/x", "../1", "v 1", "-1", "1..0"])
def test_malformed_labels_are_refused(catalog, label):
    catalog.model("iris")
    response = catalog.client("member").post("/api/v1/models/acme/iris/versions/", {"label": label}, format="json")
    assert response.status_code == 400
    assert "label" in response.json()


def test_a_drafts_changelog_changes_and_a_published_ones_does_not(catalog):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    client = catalog.client("member")
    response = client.patch(version_url(model, "0.1"), {"changelog": "Fixed"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["changelog"] == "Fixed"
    catalog.published(model, "1.0")
    response = client.patch(version_url(model, "1.0"), {"changelog": "Rewritten"}, format="json")
    assert response.status_code == 400
    assert response.json()["codes"]["status"] == ["version_immutable"]


def test_a_published_version_takes_no_new_files_and_loses_none(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    client = catalog.client("member")
    response = client.post(
        version_url(model, "1.0", "files/"), {"file": _upload("labels.txt", b"a\nb\n")}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["codes"]["status"] == ["version_immutable"]
    response = client.delete(file_url(model, "1.0", "model.onnx"))
    assert response.status_code == 400
    response = client.post(
        version_url(model, "1.0", "uploads/"), {"path": "x.bin", "size": 1, "sha256": "0" * 64}, format="json"
    )
    assert response.status_code == 400
    assert ModelVersion.objects.get(label="1.0").files.count() == 1


def test_version_detail_shows_files_with_sizes_and_digests(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    data = catalog.client("viewer").get(version_url(model, "1.0")).json()
    assert data["status"] == "published"
    assert data["published_at"]
    [entry] = data["files"]
    assert entry["path"] == "model.onnx"
    assert entry["role"] == "model"
    assert entry["size"] == len(iris_bytes())
    assert entry["download_url"].endswith("/api/v1/models/acme/iris/versions/1.0/files/model.onnx")


def test_deprecating_keeps_the_version_listed(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    response = catalog.client("member").post(
        version_url(model, "1.0", "deprecate/"), {"message": "use 2"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "deprecated"
    labels = [v["label"] for v in catalog.client("viewer").get("/api/v1/models/acme/iris/versions/").json()["results"]]
    assert labels == ["1.0"]


def test_outsider_gets_404_on_versions_of_a_private_model(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    client = catalog.client("outsider")
    assert client.get("/api/v1/models/acme/iris/versions/").status_code == 404
    assert client.get(version_url(model, "1.0")).status_code == 404
    assert client.get(version_url(model, "1.0", "files/")).status_code == 404


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)
