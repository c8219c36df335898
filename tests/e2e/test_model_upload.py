"""A member uploads the iris model into a draft version in a real browser: the file goes up through the page's
drag-and-drop uploader (static/js/upload.js, the catalog API signed in by the session and its CSRF token), the
progress bar fills, and the file is listed with its SHA-256. Screenshots of the catalog, a model page (a
validated, published model) and the upload page go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from apps.core.access import Visibility
from apps.core.job_services import job_task_for
from apps.marketplace import services
from apps.marketplace.models import ModelVersion, ValidationStatus, VersionFile
from apps.marketplace.validation import VALIDATE_JOB_KIND

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def iris_path() -> Path:
    from onnxruntime.datasets import get_example

    return Path(get_example("logreg_iris.onnx"))


@pytest.fixture(autouse=True)
def _catalog_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MARKETPLACE_UPLOAD_DIR = tmp_path / "uploads"
    settings.DEFAULT_STORAGE_QUOTA_BYTES = 0


def signed_in(page, live_server, user) -> None:
    """The browser carries a session of ``user`` (made by Django's test client, as a sign-in would)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def published_iris(world) -> None:
    """acme/iris-classifier 1.0.0: uploaded, validated by the real job (run here), published."""
    member = world.user("member")
    model = services.create_model(
        organization=world.org,
        actor=member,
        name="iris-classifier",
        summary="Logistic regression on the Iris flowers.",
        card="# Iris classifier\n\n| feature | unit |\n| --- | --- |\n| sepal length | cm |\n\n"
        "<script>alert(1)</script>",
        task="tabular-classification",
        tags=["onnx", "sklearn", "tabular"],
        license="mit",
        visibility=Visibility.INTERNAL,
    )
    version = services.create_version(model=model, actor=member, label="1.0.0", changelog="First version.")
    from django.core.files import File

    with iris_path().open("rb") as handle:
        services.add_file(version=version, actor=member, path="model.onnx", uploaded=File(handle, name="model.onnx"))
    version.refresh_from_db()
    job_task_for(VALIDATE_JOB_KIND).run(version.validation_job_id)
    version.refresh_from_db()
    assert version.validation_status == ValidationStatus.PASSED, version.validation_message
    services.publish_version(version=version, actor=member)


def test_a_member_drops_the_iris_model_into_a_draft_and_sees_it_listed(live_server, page, screenshot, world):
    published_iris(world)
    member = world.user("member")
    signed_in(page, live_server, member)
    base = live_server.url

    page.goto(f"{base}/models/")
    assert page.locator("#model-list").get_by_text("iris-classifier").count() == 1
    screenshot(page, "catalog")

    page.goto(f"{base}/models/acme/iris-classifier/")
    assert page.locator("#signature-inputs").get_by_text("float_input").count() == 1
    assert page.locator("#model-card script").count() == 0
    screenshot(page, "model-page")

    # a new draft, through the page's form
    page.get_by_role("link", name="New version").click()
    page.fill("input[name=label]", "1.1.0")
    with page.expect_navigation():
        page.get_by_role("button", name="Create draft").click()
    assert page.url.endswith("/models/acme/iris-classifier/versions/1.1.0/upload/")
    assert page.locator("#drop-zone").is_visible()

    page.set_input_files("#upload-input", str(iris_path()))
    item = page.locator('.upload-item[data-path="logreg_iris.onnx"]')
    page.locator('.upload-item[data-path="logreg_iris.onnx"]:is([data-state="done"], [data-state="failed"])').wait_for()
    assert item.get_attribute("data-state") == "done", item.inner_text()
    assert item.locator(".progress").get_attribute("aria-valuenow") == "100"
    listed = page.locator('#file-table tr[data-path="logreg_iris.onnx"]')
    listed.wait_for()
    expected = hashlib.sha256(iris_path().read_bytes()).hexdigest()
    assert listed.locator(".sha").get_attribute("title") == expected
    screenshot(page, "upload-page")

    version = ModelVersion.objects.get(model__name="iris-classifier", label="1.1.0")
    stored = VersionFile.objects.get(version=version, path="logreg_iris.onnx")
    assert stored.blob.sha256 == expected


def test_a_large_file_goes_up_in_resumable_chunks_with_its_sha256_checked(
    live_server, page, screenshot, world, settings
):
    """Above the small-file limit the page hashes the file, opens an upload session and sends it in chunks."""
    settings.MARKETPLACE_PAGE_UPLOAD_SMALL_FILE_LIMIT = 1024 * 1024
    settings.MARKETPLACE_PAGE_UPLOAD_CHUNK_SIZE = 4 * 1024 * 1024
    from tests.marketplace.conftest import minilm_path

    member = world.user("member")
    model = services.create_model(organization=world.org, actor=member, name="minilm")
    services.create_version(model=model, actor=member, label="1.0.0")
    signed_in(page, live_server, member)
    page.goto(f"{live_server.url}/models/acme/minilm/versions/1.0.0/upload/")

    # the streamed SHA-256 of upload.js (used beyond what the browser's own digest takes) agrees with Python's
    data = bytes(range(256)) * 4099
    streamed = page.evaluate(
        "(n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = i % 256;"
        " return window.gpuxUpload.sha256Streamed(new Blob([b]), () => {}); }",
        len(data),
    )
    assert streamed == hashlib.sha256(data).hexdigest()

    requests = []
    page.on("request", lambda r: requests.append((r.method, r.url)) if "/api/v1/" in r.url else None)
    page.fill("#upload-folder", "onnx")
    page.set_input_files("#upload-input", str(minilm_path()))
    page.locator('.upload-item[data-path="onnx/model.onnx"]:is([data-state="done"], [data-state="failed"])').wait_for(
        timeout=120_000
    )
    item = page.locator('.upload-item[data-path="onnx/model.onnx"]')
    assert item.get_attribute("data-state") == "done", item.inner_text()
    page.locator('#file-table tr[data-path="onnx/model.onnx"]').wait_for()
    screenshot(page, "resumable-upload")

    patches = [url for method, url in requests if method == "PATCH"]
    size = minilm_path().stat().st_size
    assert len(patches) == -(-size // (4 * 1024 * 1024))  # one PATCH per chunk
    assert any(method == "POST" and url.endswith("/complete/") for method, url in requests)
    stored = VersionFile.objects.get(version__model=model, path="onnx/model.onnx")
    assert stored.blob.sha256 == hashlib.sha256(minilm_path().read_bytes()).hexdigest()
