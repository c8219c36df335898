"""File paths stay inside the version: absolute paths, "..", backslashes, NUL and empty parts are refused,
through multipart uploads and upload sessions alike, and nothing is stored for them."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.marketplace.models import Blob, UploadSession, VersionFile
from apps.marketplace.services import normalize_path, role_for_path
from tests.marketplace.conftest import sha256_of, version_url

pytestmark = pytest.mark.django_db

BAD_PATHS = [
    "../model.onnx",
    "weights/../../etc/passwd",
    "/etc/passwd",
    "C:/model.onnx",
    "weights\\model.onnx",
    "model\x00.onnx",
    "a//b.onnx",
    "weights/",
    "./model.onnx",
    "tab\there.txt",
    " ",
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_multipart_upload_with_an_escaping_or_malformed_path_is_refused(catalog, path):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    response = catalog.client("member").post(
        version_url(model, "0.1", "files/"),
        {"file": SimpleUploadedFile("model.onnx", b"bytes"), "path": path},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert "path" in response.json()
    assert not VersionFile.objects.exists()
    assert not Blob.objects.exists()


@pytest.mark.parametrize("path", BAD_PATHS)
def test_upload_session_with_an_escaping_or_malformed_path_is_refused(catalog, path):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    response = catalog.client("member").post(
        version_url(model, "0.1", "uploads/"), {"path": path, "size": 5, "sha256": sha256_of(b"bytes")}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "path" in response.json()
    assert not UploadSession.objects.exists()


def test_a_second_file_at_the_same_path_is_refused(catalog):
    model = catalog.model("iris")
    version = catalog.version(model, "0.1")
    catalog.add(version, "labels.txt", b"a\n")
    response = catalog.client("member").post(
        version_url(model, "0.1", "files/"),
        {"file": SimpleUploadedFile("labels.txt", b"b\n")},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["codes"]["path"] == ["path_taken"]
    assert version.files.get().blob.sha256 == sha256_of(b"a\n")


def test_nested_paths_are_kept_as_given():
    assert normalize_path("onnx/model.onnx") == "onnx/model.onnx"
    assert normalize_path("tokenizer/tokenizer.json") == "tokenizer/tokenizer.json"


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("model.onnx", "model"),
        ("model.onnx.data", "external_data"),
        ("tokenizer.json", "tokenizer"),
        ("labels.txt", "labels"),
        ("gpux.yml", "manifest"),
        ("README.md", "other"),
    ],
)
def test_file_roles_follow_the_file_name(path, role):
    assert role_for_path(path) == role
