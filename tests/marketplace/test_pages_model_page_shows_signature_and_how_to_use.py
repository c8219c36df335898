"""A model's page shows what a user needs: the card, the versions with their status, the files with size and
SHA-256 and download links, the signature (inputs and outputs, types, shapes with symbolic dimensions), the
detected task, the validation outcome, aliases, and how to use it (curl with a Bearer token, Python with
requests, the version's gpux.yml). Validation progress is polled by htmx while the job runs."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from django.test import Client
from django.urls import reverse

from apps.core.access import Visibility
from apps.core.job_services import job_task_for
from apps.marketplace import services
from apps.marketplace.models import ModelVersion, ValidationStatus, VersionStatus
from apps.marketplace.validation import VALIDATE_JOB_KIND
from tests.marketplace.conftest import minilm_path


def validated(version: ModelVersion) -> ModelVersion:
    """Run the version's real validation job here and now."""
    version.refresh_from_db()
    job_task_for(VALIDATE_JOB_KIND).run(version.validation_job_id)
    version.refresh_from_db()
    assert version.validation_status == ValidationStatus.PASSED, version.validation_message
    return version


@pytest.fixture
def minilm(catalog, world):
    model = catalog.model("minilm", visibility=Visibility.PUBLIC, card="# MiniLM\n\nSentence embeddings.")
    version = catalog.version(model, "1.0.0")
    catalog.add(version, "model.onnx", minilm_path().read_bytes())
    version = services.publish_version(version=validated(version), actor=world.user("member"))
    services.set_alias(model=model, actor=world.user("member"), name="production", version=version)
    return model


@pytest.mark.django_db
def test_the_model_page_shows_files_signature_task_aliases_and_snippets(minilm):
    response = Client().get(reverse("catalog-model", args=["acme", "minilm"]))
    assert response.status_code == 200
    html = response.content.decode()
    digest = hashlib.sha256(minilm_path().read_bytes()).hexdigest()
    assert digest in html
    download = reverse(
        "api:model-version-file-detail",
        kwargs={"owner": "acme", "name": "minilm", "label": "1.0.0", "path": "model.onnx"},
    )
    assert f'href="{download}"' in html
    inputs = html[html.index('id="signature-inputs"') : html.index('id="signature-outputs"')]
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert name in inputs
    assert "[batch, sequence]" in inputs
    assert "last_hidden_state" in html and "[batch, sequence, 384]" in html
    assert "feature-extraction" in html  # detected from the signature
    assert 'data-validation="passed"' in html
    assert "production" in html[html.index('id="alias-list"') :]
    curl = html[html.index('id="snippet-curl"') :]
    assert "Authorization: Bearer $GPUX_TOKEN" in curl
    assert "http://testserver/api/v1" in curl and "/models/acme/minilm/versions/1.0.0/files/model.onnx" in curl
    python = html[html.index('id="snippet-python"') :]
    assert "import requests" in python and digest in python


@pytest.mark.django_db
def test_the_gpux_yml_on_the_page_is_the_version_s_export_for_the_gpux_cli(minilm):
    response = Client().get(reverse("catalog-version", args=["acme", "minilm", "1.0.0"]))
    html = response.content.decode()
    start = html.index('id="snippet-gpux">') + len('id="snippet-gpux">')
    text = html[start : html.index("</pre>", start)]
    import html as html_lib

    manifest = yaml.safe_load(html_lib.unescape(text))
    assert manifest["name"] == "minilm"
    assert manifest["version"] == "1.0.0"
    assert "model.onnx" in str(manifest["model"])
    assert set(manifest["inputs"]) == {"input_ids", "attention_mask", "token_type_ids"}
    assert manifest["outputs"]["last_hidden_state"]["shape"] == [-1, -1, 384]


@pytest.mark.django_db
def test_a_pending_validation_is_polled_and_a_finished_one_is_not(world, catalog):
    model = catalog.model("iris")
    version = catalog.version(model, "1.0.0")
    from tests.marketplace.conftest import iris_bytes

    catalog.add(version, "model.onnx", iris_bytes())
    client = Client()
    client.force_login(world.user("member"))  # a draft: seen by those who may change the model
    status_url = reverse("catalog-version-status", args=["acme", "iris", "1.0.0"])
    pending = client.get(status_url).content.decode()
    assert 'data-validation="pending"' in pending
    assert "every 1s" in pending and 'role="progressbar"' in pending
    validated(version)
    done = client.get(status_url).content.decode()
    assert 'data-validation="passed"' in done and "every 1s" not in done
    assert "Publish 1.0.0" in done
    viewer = Client()
    viewer.force_login(world.user("viewer"))
    assert viewer.get(status_url).status_code == 404  # viewers do not see drafts


@pytest.mark.django_db
def test_a_failed_validation_shows_its_message_and_keeps_the_draft(world, catalog):
    model = catalog.model("broken")
    version = catalog.version(model, "1.0.0")
    from tests.marketplace.conftest import iris_bytes

    catalog.add(version, "model.onnx", iris_bytes())
    version.refresh_from_db()
    from apps.marketplace.validation import apply_report

    apply_report(version=version, report={"ok": False, "errors": ["onnx.checker: the graph has a cycle."]})
    client = Client()
    client.force_login(world.user("member"))
    html = client.get(reverse("catalog-version", args=["acme", "broken", "1.0.0"])).content.decode()
    assert 'id="validation-message"' in html and "the graph has a cycle." in html
    assert "Publish 1.0.0" not in html
    version.refresh_from_db()
    assert version.status == VersionStatus.DRAFT
