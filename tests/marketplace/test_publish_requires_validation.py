"""Publishing needs a passed validation: random bytes are accepted as a draft file but never publishable; the real
iris classifier, validated by the real job, publishes."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.marketplace.models import ModelVersion
from apps.marketplace.validation import run_validation
from tests.marketplace.conftest import iris_bytes, random_bytes, version_url

pytestmark = pytest.mark.django_db


def _upload(catalog, model, label, path, data):
    response = catalog.client("member").post(
        version_url(model, label, "files/"), {"file": SimpleUploadedFile(path, data)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response


def _validate(label: str) -> ModelVersion:
    version = ModelVersion.objects.get(label=label)
    assert version.validation_status == "pending"
    run_validation(version.validation_job)
    version.refresh_from_db()
    return version


def test_random_bytes_are_a_draft_file_but_never_publishable(catalog):
    model = catalog.model("junk")
    catalog.version(model, "0.1")
    _upload(catalog, model, "0.1", "model.onnx", random_bytes(8192))
    client = catalog.client("member")

    response = client.post(version_url(model, "0.1", "publish/"))
    assert response.status_code == 400
    assert response.json()["codes"]["validation_status"] == ["validation_not_passed"]

    version = _validate("0.1")
    assert version.validation_status == "failed"
    assert version.validation_message
    response = client.post(version_url(model, "0.1", "publish/"))
    assert response.status_code == 400
    assert "validation failed" in response.json()["validation_status"][0]
    assert ModelVersion.objects.get(label="0.1").status == "draft"


def test_a_version_without_a_model_file_cannot_be_published(catalog):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    _upload(catalog, model, "0.1", "labels.txt", b"setosa\nversicolor\nvirginica\n")
    response = catalog.client("member").post(version_url(model, "0.1", "publish/"))
    assert response.status_code == 400
    assert response.json()["codes"]["files"] == ["no_model_file"]


def test_the_real_iris_model_validates_and_publishes_with_its_signature(catalog):
    model = catalog.model("iris")
    catalog.version(model, "1.0")
    _upload(catalog, model, "1.0", "model.onnx", iris_bytes())
    version = _validate("1.0")
    assert version.validation_status == "passed", version.validation_message

    response = catalog.client("member").post(version_url(model, "1.0", "publish/"))
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "published"
    assert data["published_at"]
    assert [entry["name"] for entry in data["signature"]["inputs"]] == ["float_input"]


def test_adding_a_file_after_validation_makes_it_stale(catalog):
    model = catalog.model("iris")
    catalog.version(model, "1.0")
    _upload(catalog, model, "1.0", "model.onnx", iris_bytes())
    assert _validate("1.0").validation_status == "passed"
    _upload(catalog, model, "1.0", "labels.txt", b"a\nb\nc\n")
    assert ModelVersion.objects.get(label="1.0").validation_status == "pending"
    response = catalog.client("member").post(version_url(model, "1.0", "publish/"))
    assert response.status_code == 400


def test_viewer_may_not_publish(catalog):
    model = catalog.model("iris")
    catalog.version(model, "1.0")
    response = catalog.client("viewer").post(version_url(model, "1.0", "publish/"))
    assert response.status_code == 403
