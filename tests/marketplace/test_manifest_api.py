"""gpux.yml through the API: export a version's manifest for the GPUX CLI, import one into a draft, create a draft
from one. The real iris model (onnxruntime.datasets), uploaded through the API and checked by the real validation
job. Every refusal answers a 4xx naming ``manifest`` (or the field it concerns) and writes nothing."""

from __future__ import annotations

import json

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.models import TokenScope
from apps.audit.models import AuditEvent
from apps.core.access import Visibility
from apps.marketplace import services
from apps.marketplace.models import Blob, ModelVersion, ValidationStatus, VersionFile
from apps.marketplace.validation import run_validation
from tests.marketplace.conftest import iris_bytes, version_url

pytestmark = pytest.mark.django_db

YAML = "application/yaml"
IRIS_MANIFEST = """\
name: iris
version: 2.0.0
model: {source: ./model.onnx}
inputs:
  float_input: {type: float32, shape: [3, 2]}
outputs:
  label: {type: int64, shape: [3], labels: [setosa, versicolor, virginica]}
runtime: {gpu: {memory: 1GB, backend: cuda}, batch_size: 4}
preprocessing: {normalize: standard}
"""


def manifest_url(model, label: str) -> str:
    return version_url(model, label, "manifest")


def upload_iris(catalog, model, label: str) -> None:
    upload = {"file": SimpleUploadedFile("model.onnx", iris_bytes())}
    response = catalog.client("member").post(version_url(model, label, "files/"), upload, format="multipart")
    assert response.status_code == 201, response.content


def validate(model, label: str) -> ModelVersion:
    version = ModelVersion.objects.get(model=model, label=label)
    run_validation(version.validation_job)
    version.refresh_from_db()
    assert version.validation_status == ValidationStatus.PASSED, version.validation_message
    return version


def validated_iris(catalog, *, visibility: str = Visibility.PRIVATE, label: str = "1.0.0") -> ModelVersion:
    """A draft holding the iris classifier, uploaded through the API and validated by the real job."""
    model = catalog.model("iris", visibility=visibility)
    catalog.version(model, label)
    upload_iris(catalog, model, label)
    return validate(model, label)


def put_manifest(client, model, label: str, body, content_type: str = YAML):
    return client.generic("PUT", manifest_url(model, label), data=body, content_type=content_type)


class Unchanged:
    """Counts of what a refused request must not write: files, blobs, versions, audit events."""

    def __init__(self) -> None:
        self.before = self.counts()

    @staticmethod
    def counts() -> dict[str, int]:
        return {
            "files": VersionFile.objects.count(),
            "blobs": Blob.objects.count(),
            "versions": ModelVersion.objects.count(),
            "events": AuditEvent.objects.count(),
        }

    def check(self) -> None:
        assert self.counts() == self.before


# --- export ----------------------------------------------------------------------------------------------------
def test_a_validated_version_exports_a_gpux_yml_the_gpux_cli_reads(catalog):
    version = validated_iris(catalog)

    # A validated draft: read by those who may change the model, with a read token.
    response = catalog.client("member", scope=TokenScope.READ).get(manifest_url(version.model, "1.0.0"))

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="gpux.yml"'
    assert response["Cache-Control"] == "private, no-cache"
    data = yaml.safe_load(response.content.decode())
    assert data["name"] == "iris" and data["version"] == "1.0.0"
    assert data["model"] == {"source": "./model.onnx", "format": "onnx"}
    assert data["inputs"] == {"float_input": {"type": "float32", "shape": [3, 2], "required": True}}
    assert data["outputs"]["label"] == {"type": "int64", "shape": [3]}
    assert data["outputs"]["probabilities"] == {"type": "seq(map(int64,tensor(float32)))"}
    assert data["metadata"]["portal_model"] == "acme/iris"


def test_the_exported_gpux_yml_of_the_iris_model_imports_back_into_a_new_draft_and_passes_validation(catalog):
    first = validated_iris(catalog)
    client = catalog.client("member")
    exported = client.get(manifest_url(first.model, "1.0.0")).content
    catalog.version(first.model, "1.0.1")
    upload_iris(catalog, first.model, "1.0.1")
    validate(first.model, "1.0.1")

    response = put_manifest(client, first.model, "1.0.1", exported)

    assert response.status_code == 201, response.content
    assert response.json()["path"] == "gpux.yml" and response.json()["role"] == "manifest"
    second = validate(first.model, "1.0.1")
    assert second.onnx_info["checks"]["manifest"] == "passed"
    again = yaml.safe_load(client.get(manifest_url(first.model, "1.0.1")).content)
    original = yaml.safe_load(exported)
    assert again["inputs"] == original["inputs"] and again["outputs"] == original["outputs"]
    assert again["version"] == "1.0.1"


def test_a_draft_created_from_a_gpux_yml_is_labelled_by_its_version_and_keeps_its_settings_on_export(catalog):
    model = catalog.model("iris")
    client = catalog.client("member")

    response = client.post(f"/api/v1/models/acme/{model.name}/versions/", {"manifest": IRIS_MANIFEST})

    assert response.status_code == 201, response.content
    assert response.json()["label"] == "2.0.0"
    assert [f["path"] for f in response.json()["files"]] == ["gpux.yml"]
    upload_iris(catalog, model, "2.0.0")
    version = validate(model, "2.0.0")
    assert version.onnx_info["checks"]["manifest"] == "passed"
    exported = yaml.safe_load(client.get(manifest_url(model, "2.0.0")).content)
    assert exported["runtime"] == {"gpu": {"memory": "1GB", "backend": "cuda"}, "batch_size": 4, "timeout": 30}
    assert exported["preprocessing"] == {"normalize": "standard"}
    assert exported["outputs"]["label"]["labels"] == ["setosa", "versicolor", "virginica"]


def test_a_label_sent_with_the_manifest_wins_over_its_version(catalog):
    model = catalog.model("iris")

    response = catalog.client("member").post(
        f"/api/v1/models/acme/{model.name}/versions/", {"manifest": IRIS_MANIFEST, "label": "2.0.0-onnx"}
    )

    assert response.status_code == 201, response.content
    assert response.json()["label"] == "2.0.0-onnx"


def test_a_version_not_validated_yet_answers_409_naming_the_signature(catalog):
    model = catalog.model("iris")
    catalog.version(model)
    upload_iris(catalog, model, "1.0.0")

    response = catalog.client("member").get(manifest_url(model, "1.0.0"))

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "not_validated"
    assert body["signature"] == ["The version has no signature yet: its validation has not passed."]
    assert body["detail"] == body["signature"][0]


def test_a_version_without_a_model_file_answers_409_naming_the_files(catalog):
    version = catalog.version(catalog.model("iris"))

    response = catalog.client("member").get(manifest_url(version.model, "1.0.0"))

    assert response.status_code == 409
    assert response.json()["code"] == "no_model_file"
    assert response.json()["files"] == ["The version has no ONNX model file."]


def test_a_public_models_gpux_yml_is_readable_by_anyone(catalog):
    version = validated_iris(catalog, visibility=Visibility.PUBLIC)
    services.publish_version(version=version, actor=catalog.world.user("member"))

    response = catalog.client("anonymous").get(manifest_url(version.model, "1.0.0"))

    assert response.status_code == 200, response.content
    assert yaml.safe_load(response.content)["name"] == "iris"
    assert response["Cache-Control"] == "public, no-cache"


@pytest.mark.parametrize("persona", ["outsider", "anonymous"])
def test_a_private_models_gpux_yml_is_not_found_outside_its_organization(catalog, persona):
    version = validated_iris(catalog)

    response = catalog.client(persona).get(manifest_url(version.model, "1.0.0"))

    assert response.status_code == 404  # as its downloads: a private model does not exist outside acme
    assert response.json()["code"] == "not_found"


def test_a_yanked_version_answers_410_to_those_who_never_downloaded_it(catalog):
    version = validated_iris(catalog)
    services.publish_version(version=version, actor=catalog.world.user("member"))
    services.yank_version(version=version, actor=catalog.world.user("admin"), reason="Wrong labels.")

    response = catalog.client("viewer").get(manifest_url(version.model, "1.0.0"))

    assert response.status_code == 410
    assert response.json()["code"] == "version_yanked"
    assert "Wrong labels." in response.json()["detail"]


# --- import -----------------------------------------------------------------------------------------------------
def test_a_gpux_yml_sent_as_json_replaces_the_drafts_gpux_yml(catalog):
    version = validated_iris(catalog)
    client = catalog.client("member")
    text = IRIS_MANIFEST.replace("version: 2.0.0", "version: 1.0.0")
    assert put_manifest(client, version.model, "1.0.0", text).status_code == 201

    response = put_manifest(
        client,
        version.model,
        "1.0.0",
        json.dumps({"manifest": text.replace("normalize: standard", "normalize: none")}),
        "application/json",
    )

    assert response.status_code == 200, response.content
    assert list(version.files.values_list("path", flat=True).order_by("path")) == ["gpux.yml", "model.onnx"]
    stored = client.get(version_url(version.model, "1.0.0", "files/gpux.yml"))
    assert b"normalize: none" in b"".join(stored.streaming_content)
    files = AuditEvent.objects.filter(action__startswith="model.version.file_").order_by("-id")
    actions = list(files.values_list("action", flat=True)[:2])
    assert actions == ["model.version.file_added", "model.version.file_removed"]


def test_bad_yaml_is_refused_naming_the_manifest_and_nothing_is_written(catalog):
    version = validated_iris(catalog)
    unchanged = Unchanged()

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", "name: iris\ninputs: [unclosed\n")

    assert response.status_code == 400
    assert response.json()["codes"]["manifest"] == ["invalid_manifest"]
    assert response.json()["manifest"][0].startswith("gpux.yml: not valid YAML (line 3, column 1)")
    unchanged.check()


def test_fields_of_the_wrong_type_are_named_by_their_path(catalog):
    version = validated_iris(catalog)
    unchanged = Unchanged()
    text = (
        "name: iris\nmodel: {source: model.onnx}\ninputs: {float_input: {type: float32, shape: 3}}\n"
        "outputs: [{name: label, type: int64, labels: setosa}]\nruntime: {batch_size: four, gpu: {memory: lots}}\n"
    )

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", text, "text/plain")

    assert response.status_code == 400
    paths = [message.split(":")[0] for message in response.json()["manifest"]]
    assert paths == ["inputs.float_input.shape", "outputs[0].labels", "runtime.gpu.memory", "runtime.batch_size"]
    unchanged.check()


def test_a_gpux_yml_that_contradicts_the_models_signature_is_refused_field_by_field(catalog):
    version = validated_iris(catalog)
    unchanged = Unchanged()
    text = (
        "name: iris\nmodel: {source: model.onnx}\ninputs: [{name: text, type: string}]\n"
        "outputs: [{name: label, type: float32, shape: [4]}]\n"
    )

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", text)

    assert response.status_code == 400
    assert response.json()["codes"]["manifest"] == ["manifest_mismatch"] * 3
    assert response.json()["manifest"] == [
        "inputs[0].name: the model has no input “text” (it has float_input)",
        "outputs[0].type: “float32”, but the model's is “int64”",
        "outputs[0].shape[0]: 4, but the model's is 3",
    ]
    unchanged.check()
    version.refresh_from_db()
    assert version.validation_status == ValidationStatus.PASSED


def test_replacing_the_gpux_yml_with_a_bad_one_keeps_the_old_one(catalog):
    version = validated_iris(catalog)
    client = catalog.client("member")
    assert put_manifest(client, version.model, "1.0.0", IRIS_MANIFEST).status_code == 201
    kept = version.files.get(path="gpux.yml").blob.sha256
    unchanged = Unchanged()

    response = put_manifest(client, version.model, "1.0.0", "name: iris\nmodel: {source: other.onnx}\n")

    assert response.status_code == 400
    unchanged.check()
    assert version.files.get(path="gpux.yml").blob.sha256 == kept


def test_a_body_over_256_kib_answers_413_naming_the_manifest(catalog):
    version = validated_iris(catalog)
    unchanged = Unchanged()
    body = "name: iris\n" + "# padding\n" * 30_000

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", body)

    assert response.status_code == 413
    assert response.json()["code"] == "manifest_too_large"
    assert "262144 bytes" in response.json()["manifest"][0]
    unchanged.check()


def test_a_body_that_is_not_utf8_is_refused_naming_the_byte(catalog):
    version = validated_iris(catalog)
    unchanged = Unchanged()

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", b"name: iris\ndescription: caf\xe9\n")

    assert response.status_code == 400
    assert response.json()["manifest"] == ["gpux.yml: not valid UTF-8 text (byte 27)."]
    unchanged.check()


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'["a list"]', b'{"manifest": 12}', b'{"manifest": "\\ud800"}', b"\xff\xfe"],
    ids=["broken", "a-list", "a-number", "a-lone-surrogate", "not-utf8"],
)
def test_a_json_body_without_a_usable_manifest_is_refused_naming_it(catalog, body):
    version = validated_iris(catalog)
    unchanged = Unchanged()

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", body, "application/json")

    assert response.status_code == 400, response.content
    assert response.json()["manifest"]
    unchanged.check()


def test_a_body_of_another_type_answers_415(catalog):
    version = validated_iris(catalog)

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", IRIS_MANIFEST, "application/xml")

    assert response.status_code == 415
    assert "application/yaml" in response.json()["detail"]


def test_a_published_version_is_immutable_so_its_gpux_yml_is_not_replaced(catalog):
    version = validated_iris(catalog)
    services.publish_version(version=version, actor=catalog.world.user("member"))
    unchanged = Unchanged()

    response = put_manifest(catalog.client("member"), version.model, "1.0.0", IRIS_MANIFEST)

    assert response.status_code == 400
    assert response.json()["codes"]["status"] == ["version_immutable"]
    assert "immutable" in response.json()["status"][0]
    unchanged.check()


@pytest.mark.parametrize(("persona", "expected"), [("viewer", 403), ("outsider", 404), ("anonymous", 401)])
def test_only_members_import_a_gpux_yml(catalog, persona, expected):
    version = validated_iris(catalog)
    unchanged = Unchanged()

    response = put_manifest(catalog.client(persona), version.model, "1.0.0", IRIS_MANIFEST)

    assert response.status_code == expected
    unchanged.check()


def test_a_read_token_may_export_but_not_import(catalog):
    version = validated_iris(catalog)
    client = catalog.client("owner", scope=TokenScope.READ)

    assert client.get(manifest_url(version.model, "1.0.0")).status_code == 200
    response = put_manifest(client, version.model, "1.0.0", IRIS_MANIFEST)

    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


# --- a draft from a gpux.yml: refusals --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            "name: iris\nmodel: {source: model.onnx}\ninputs: {x: float32}\noutputs: {y: float32}\n",
            "version: this field is required to label the new version (or send a label).",
        ),
        (
            IRIS_MANIFEST.replace("version: 2.0.0", "version: 'two point oh'"),
            "version: “two point oh” cannot label a version.",
        ),
        (IRIS_MANIFEST.replace("float32", "complex"), "inputs.float_input.type: unknown type 'complex'"),
    ],
    ids=["no-version", "version-not-a-label", "bad-field"],
)
def test_a_draft_is_not_created_from_an_unusable_gpux_yml(catalog, manifest, message):
    model = catalog.model("iris")
    unchanged = Unchanged()

    response = catalog.client("member").post(f"/api/v1/models/acme/{model.name}/versions/", {"manifest": manifest})

    assert response.status_code == 400
    assert response.json()["manifest"][0].startswith(message)
    unchanged.check()


def test_a_version_needs_a_label_or_a_manifest(catalog):
    model = catalog.model("iris")

    response = catalog.client("member").post(f"/api/v1/models/acme/{model.name}/versions/", {"changelog": "x"})

    assert response.status_code == 400
    assert response.json()["label"] == ["This field is required (or send a gpux.yml as manifest)."]
