"""From an empty organization to a published model, in a real browser with a real Celery worker: a member
creates a model, starts a version, drops the iris model on the upload page, watches the validation job's
progress (htmx polling) turn into "validated", publishes, and finds the model in the catalog with its signature.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from apps.marketplace.models import ModelVersion, ValidationStatus, VersionStatus
from tests.core.conftest import _thread_worker, job_worker, media_root  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("job_worker"),
]


def iris_path() -> Path:
    from onnxruntime.datasets import get_example

    return Path(get_example("logreg_iris.onnx"))


@pytest.fixture(autouse=True)
def _catalog_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MARKETPLACE_UPLOAD_DIR = tmp_path / "uploads"
    settings.DEFAULT_STORAGE_QUOTA_BYTES = 0


def test_a_member_publishes_a_model_from_the_browser(live_server, page, screenshot, world):
    client = Client()
    client.force_login(world.user("member"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page.on("dialog", lambda dialog: dialog.accept())
    base = live_server.url

    page.goto(f"{base}/models/")
    page.get_by_role("button", name="New model").click()
    with page.expect_navigation():
        page.get_by_role("link", name="Acme").click()
    page.fill("input[name=name]", "iris")
    page.fill("input[name=summary]", "Iris flowers")
    page.fill("input[name=tags]", "onnx, tabular")
    page.fill("textarea[name=card]", "# Iris\n\nA logistic regression.")
    with page.expect_navigation():
        page.get_by_role("button", name="Create model").click()
    page.fill("input[name=label]", "1.0.0")
    with page.expect_navigation():
        page.get_by_role("button", name="Create draft").click()

    page.set_input_files("#upload-input", str(iris_path()))
    page.locator('.upload-item[data-state="done"]').wait_for()
    # the worker validates; the panel polls until the outcome is in
    page.locator('#version-status[data-validation="passed"]').wait_for(timeout=90_000)
    screenshot(page, "validated")
    with page.expect_navigation():
        page.locator("#publish-button").click()
    assert "published" in page.locator("#messages").inner_text()
    screenshot(page, "version-page")

    version = ModelVersion.objects.get(model__name="iris", label="1.0.0")
    assert version.status == VersionStatus.PUBLISHED
    assert version.validation_status == ValidationStatus.PASSED
    assert version.files.get().path == "logreg_iris.onnx"

    page.goto(f"{base}/models/acme/iris/")
    assert page.locator("#signature-inputs").get_by_text("float_input").count() == 1
    assert page.locator('#version-table [data-status="published"]').count() == 1
    screenshot(page, "published")
