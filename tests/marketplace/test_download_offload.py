"""DOWNLOAD_OFFLOAD hands the bytes to the web server (X-Accel-Redirect for nginx, X-Sendfile for Apache) or to the
storage's own URL, after restrict() and with the usage counted."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from apps.analytics.models import UsageEvent
from apps.marketplace.models import blob_storage_name
from tests.marketplace.conftest import body_of, file_url, iris_bytes, sha256_of
from tests.usage_support import drained

pytestmark = pytest.mark.django_db


@pytest.fixture
def iris(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    return model


def test_x_accel_redirect_names_the_internal_location(catalog, iris, settings):
    settings.DOWNLOAD_OFFLOAD = "x-accel-redirect"
    settings.DOWNLOAD_OFFLOAD_PREFIX = "/protected/"
    response = catalog.client("viewer").get(file_url(iris, "1.0", "model.onnx"))
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == "/protected/" + blob_storage_name(sha256_of(iris_bytes()))
    assert response["ETag"] == f'"{sha256_of(iris_bytes())}"'
    assert body_of(response) == b""
    assert drained(UsageEvent).get().status_code == 200


def test_x_sendfile_names_the_local_file(catalog, iris, settings):
    settings.DOWNLOAD_OFFLOAD = "x-sendfile"
    response = catalog.client("viewer").get(file_url(iris, "1.0", "model.onnx"))
    assert response["X-Sendfile"] == default_storage.path(blob_storage_name(sha256_of(iris_bytes())))


def test_storage_url_redirects_to_the_storage(catalog, iris, settings):
    settings.DOWNLOAD_OFFLOAD = "storage-url"
    response = catalog.client("viewer").get(file_url(iris, "1.0", "model.onnx"))
    assert response.status_code == 302
    assert response["Location"].endswith(blob_storage_name(sha256_of(iris_bytes())))
    link = catalog.client("viewer").get("/api/v1/models/acme/iris/versions/1.0/links/model.onnx").json()
    assert link["url"].endswith(blob_storage_name(sha256_of(iris_bytes())))


def test_offload_still_refuses_outsiders_and_answers_304_itself(catalog, iris, settings):
    settings.DOWNLOAD_OFFLOAD = "x-accel-redirect"
    assert catalog.client("outsider").get(file_url(iris, "1.0", "model.onnx")).status_code == 404
    response = catalog.client("viewer").get(
        file_url(iris, "1.0", "model.onnx"), HTTP_IF_NONE_MATCH=f'"{sha256_of(iris_bytes())}"'
    )
    assert response.status_code == 304
    assert "X-Accel-Redirect" not in response
