"""Publishing needs a passed validation. A model file that cannot be one (random bytes, a truncated file) is refused
at upload with nothing stored; random bytes are accepted as a companion file of a draft, but the draft is never
publishable until its model passed validation; the real iris classifier, validated by the real job, publishes."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.marketplace.models import Blob, ModelVersion, VersionFile
from apps.marketplace.validation import run_validation
from tests.marketplace.conftest import iris_bytes, random_bytes, stored_files, version_url

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


def test_random_bytes_as_the_model_file_are_refused_at_upload_and_nothing_is_stored(catalog, catalog_storage):
    model = catalog.model("junk")
    catalog.version(model, "0.1")
    response = catalog.client("member").post(
        version_url(model, "0.1", "files/"),
        {"file": SimpleUploadedFile("model.onnx", random_bytes(8192))},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["codes"]["file"][0] == "invalid_onnx"
    assert response.json()["file"][0]
    assert not VersionFile.objects.exists()
    assert not Blob.objects.exists()
    assert stored_files(catalog_storage / "media") == []


def test_a_truncated_model_in_an_upload_session_is_refused_on_completion(catalog):
    model = catalog.model("junk")
    catalog.version(model, "0.1")
    data = iris_bytes()[:200]
    client = catalog.client("member")
    session = client.post(
        version_url(model, "0.1", "uploads/"),
        {"path": "model.onnx", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        format="json",
    ).json()
    client.generic(
        "PATCH",
        session["upload_url"],
        data=data,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET="0",
    )
    response = client.post(session["complete_url"])
    assert response.status_code == 400
    assert response.json()["codes"]["file"][0] == "invalid_onnx"
    assert not Blob.objects.exists()


def test_random_bytes_are_a_draft_file_but_the_version_is_never_publishable(catalog):
    model = catalog.model("junk")
    catalog.version(model, "0.1")
    _upload(catalog, model, "0.1", "weights.bin", random_bytes(8192))  # a companion file: any bytes
    client = catalog.client("member")
    response = client.post(version_url(model, "0.1", "publish/"))
    assert response.status_code == 400
    assert response.json()["codes"]["files"] == ["no_model_file"]

    _upload(catalog, model, "0.1", "model.onnx", iris_bytes())
    response = client.post(version_url(model, "0.1", "publish/"))
    assert response.status_code == 400  # validation is still pending
    assert response.json()["codes"]["validation_status"] == ["validation_not_passed"]
    assert "still running" in response.json()["validation_status"][0]


def test_a_model_that_fails_validation_is_never_publishable(catalog):
    model = catalog.model("junk")
    catalog.version(model, "0.1")
    # Parses, but its operator domain is unknown to ONNX Runtime: only the full validation job catches it.
    _upload(catalog, model, "0.1", "model.onnx", _unknown_operator_model())
    version = _validate("0.1")
    assert version.validation_status == "failed"
    assert version.validation_message
    response = catalog.client("member").post(version_url(model, "0.1", "publish/"))
    assert response.status_code == 400
    assert "validation failed" in response.json()["validation_status"][0]
    assert ModelVersion.objects.get(label="0.1").status == "draft"


def _unknown_operator_model() -> bytes:
    from onnx import TensorProto, helper

    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example.unknown")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example.unknown", 1)]
    )
    model.ir_version = 8
    return model.SerializeToString()


def test_validate_starts_a_new_validation_of_a_draft(catalog):
    model = catalog.model("iris")
    catalog.version(model, "1.0")
    client = catalog.client("member")
    assert client.post(version_url(model, "1.0", "validate/")).status_code == 400  # nothing to validate yet
    _upload(catalog, model, "1.0", "model.onnx", iris_bytes())
    first = ModelVersion.objects.get(label="1.0").validation_job
    response = client.post(version_url(model, "1.0", "validate/"))
    assert response.status_code == 202, response.content
    assert response.json()["validation_status"] == "pending"
    assert ModelVersion.objects.get(label="1.0").validation_job != first
    # A viewer does not see a draft (only those who may change the model do): 404, as for any unseen object.
    assert catalog.client("viewer").post(version_url(model, "1.0", "validate/")).status_code == 404


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
    assert response.status_code == 404  # a draft is not the viewer's to see
    assert ModelVersion.objects.get(label="1.0").status == "draft"
