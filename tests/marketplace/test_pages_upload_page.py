"""The upload page of a draft renders the uploader (drop zone, file input, progress bar template, the API routes
it talks to, static/js/upload.js), and those routes accept what the script sends: the session's cookie with the
CSRF token in the X-CSRFToken header, for a multipart upload and for the resumable protocol. Without the token
the API refuses. A published version has no upload page: it is immutable."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import resolve, reverse

from apps.marketplace.models import VersionFile
from tests.marketplace.conftest import iris_bytes


@pytest.fixture
def draft(catalog):
    model = catalog.model("iris")
    return catalog.version(model, "1.0.0")


def upload_page(client: Client, world) -> tuple[str, dict]:
    response = client.get(reverse("catalog-version-upload", args=[world.org.slug, "iris", "1.0.0"]))
    assert response.status_code == 200
    html = response.content.decode()
    config = json.loads(re.search(r'<script id="upload-config" type="application/json">(.*?)</script>', html).group(1))
    return html, config


def csrf_token_of(html: str) -> str:
    return re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)


@pytest.mark.django_db
def test_the_upload_page_renders_the_drop_zone_and_the_progress_ui(world, draft):
    client = Client()
    client.force_login(world.user("member"))
    html, config = upload_page(client, world)
    assert 'id="drop-zone"' in html
    assert re.search(r'<input type="file" id="upload-input"[^>]*multiple', html)
    assert '<template id="upload-item-template">' in html
    assert 'class="progress"' in html and 'class="progress-bar"' in html
    assert '/static/js/upload.js"' in html
    assert finders.find("js/upload.js")
    assert resolve(config["filesUrl"]).url_name == "model-version-file-list"
    assert resolve(config["sessionsUrl"]).url_name == "model-version-upload-list"
    assert config["smallFileLimit"] > 0 and config["chunkSize"] > 0
    # the files and validation panel, refreshed by htmx when an upload finishes
    assert 'hx-trigger="upload-done from:body"' in html


@pytest.mark.django_db
def test_a_published_version_has_no_upload_page(world, catalog):
    model = catalog.model("iris")
    catalog.published(model)
    client = Client()
    client.force_login(world.user("member"))
    response = client.get(reverse("catalog-version-upload", args=[world.org.slug, "iris", "1.0.0"]))
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog-version", args=[world.org.slug, "iris", "1.0.0"])


@pytest.mark.django_db
def test_a_multipart_upload_with_the_session_and_its_csrf_token_is_accepted(world, draft):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user("member"))
    html, config = upload_page(client, world)
    from django.core.files.uploadedfile import SimpleUploadedFile

    refused = client.post(config["filesUrl"], {"file": SimpleUploadedFile("model.onnx", iris_bytes())})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    response = client.post(
        config["filesUrl"],
        {"file": SimpleUploadedFile("model.onnx", iris_bytes()), "path": "model.onnx"},
        headers={"X-CSRFToken": csrf_token_of(html)},
    )
    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == hashlib.sha256(iris_bytes()).hexdigest()
    assert VersionFile.objects.filter(version=draft, path="model.onnx").exists()


@pytest.mark.django_db
def test_a_resumable_upload_with_the_session_follows_the_script_s_protocol(world, draft):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user("member"))
    html, config = upload_page(client, world)
    headers = {"X-CSRFToken": csrf_token_of(html), "Accept": "application/json"}
    data = iris_bytes()
    created = client.post(
        config["sessionsUrl"],
        {"path": "weights/model.onnx", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        content_type="application/json",
        headers=headers,
    )
    assert created.status_code == 201, created.content
    session = created.json()
    half = len(data) // 2
    first = client.patch(
        session["upload_url"],
        data[:half],
        content_type="application/offset+octet-stream",
        headers={**headers, "Upload-Offset": "0"},
    )
    assert first.status_code == 200 and first["Upload-Offset"] == str(half)
    wrong = client.patch(
        session["upload_url"],
        data[half:],
        content_type="application/offset+octet-stream",
        headers={**headers, "Upload-Offset": "0"},
    )
    assert wrong.status_code == 409 and wrong["Upload-Offset"] == str(half)  # the script resumes from there
    rest = client.patch(
        session["upload_url"],
        data[half:],
        content_type="application/offset+octet-stream",
        headers={**headers, "Upload-Offset": str(half)},
    )
    assert rest.status_code == 200 and rest["Upload-Offset"] == str(len(data))
    completed = client.post(session["complete_url"], headers=headers)
    assert completed.status_code == 201, completed.content
    assert VersionFile.objects.get(version=draft, path="weights/model.onnx").blob.size == len(data)


@pytest.mark.django_db
def test_an_upload_refused_by_the_api_answers_a_message_the_script_shows(world, draft, settings):
    settings.DEFAULT_STORAGE_QUOTA_BYTES = 10
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user("member"))
    html, config = upload_page(client, world)
    data = iris_bytes()
    response = client.post(
        config["sessionsUrl"],
        {"path": "model.onnx", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        content_type="application/json",
        headers={"X-CSRFToken": csrf_token_of(html)},
    )
    assert response.status_code == 403
    assert response.json()["detail"]  # upload.js shows ``detail`` (or the field messages) under the file
    assert not VersionFile.objects.exists()
