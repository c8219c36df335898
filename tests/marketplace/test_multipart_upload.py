"""Multipart upload of small files: stored once under their SHA-256, listed with size and digest, audited."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.audit.models import AuditEvent
from apps.marketplace.models import Blob, blob_storage_name
from tests.marketplace.conftest import iris_bytes, sha256_of, stored_files, version_url

pytestmark = pytest.mark.django_db


def test_member_uploads_the_iris_model_and_it_is_stored_by_content(catalog, catalog_storage):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    data = iris_bytes()
    response = catalog.client("member").post(
        version_url(model, "0.1", "files/"), {"file": SimpleUploadedFile("model.onnx", data)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["path"] == "model.onnx"
    assert body["role"] == "model"
    assert body["size"] == len(data)
    assert body["sha256"] == sha256_of(data)
    blob = Blob.objects.get()
    assert blob.storage_name == blob_storage_name(sha256_of(data))
    with default_storage.open(blob.storage_name) as stored:
        assert stored.read() == data
    assert stored_files(catalog_storage / "uploads") == []  # the spool is empty again
    event = AuditEvent.objects.get(action="model.version.file_added")
    assert event.metadata["sha256"] == sha256_of(data)


def test_the_path_field_places_a_file_in_a_folder(catalog):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    response = catalog.client("member").post(
        version_url(model, "0.1", "files/"),
        {"file": SimpleUploadedFile("vocab.txt", b"[PAD]\n"), "path": "tokenizer/vocab.txt"},
        format="multipart",
    )
    assert response.status_code == 201
    listing = catalog.client("member").get(version_url(model, "0.1", "files/")).json()  # a draft: members
    assert [entry["path"] for entry in listing] == ["tokenizer/vocab.txt"]


def test_viewer_may_not_upload(catalog):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    response = catalog.client("viewer").post(
        version_url(model, "0.1", "files/"), {"file": SimpleUploadedFile("x.txt", b"x")}, format="multipart"
    )
    assert response.status_code == 403
    assert not Blob.objects.exists()


def test_an_upload_without_a_file_names_the_field(catalog):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    response = catalog.client("member").post(version_url(model, "0.1", "files/"), {}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()


def test_member_removes_a_file_from_a_draft(catalog):
    model = catalog.model("iris")
    version = catalog.version(model, "0.1")
    catalog.add(version, "labels.txt", b"a\n")
    assert catalog.client("viewer").delete(version_url(model, "0.1", "files/labels.txt")).status_code == 403
    assert catalog.client("member").delete(version_url(model, "0.1", "files/labels.txt")).status_code == 204
    assert not version.files.exists()
    assert catalog.client("member").delete(version_url(model, "0.1", "files/labels.txt")).status_code == 404
