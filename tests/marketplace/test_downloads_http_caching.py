"""Downloads that caches understand: a strong ETag (the SHA-256), Cache-Control, conditional GET (304)."""

from __future__ import annotations

import pytest

from tests.marketplace.conftest import body_of, file_url, iris_bytes, sha256_of

pytestmark = pytest.mark.django_db


def test_a_published_file_downloads_whole_with_its_digest_as_strong_etag(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    response = catalog.client("viewer").get(file_url(model, "1.0", "model.onnx"))
    assert response.status_code == 200
    data = iris_bytes()
    assert body_of(response) == data
    assert response.headers["ETag"] == f'"{sha256_of(data)}"'
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "model.onnx" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"


def test_a_public_models_published_file_is_publicly_cacheable(catalog):
    model = catalog.model("iris", visibility="public")
    catalog.published(model, "1.0")
    response = catalog.client("anonymous").get(file_url(model, "1.0", "model.onnx"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_a_drafts_file_must_be_revalidated(catalog):
    model = catalog.model("iris")
    catalog.add(catalog.version(model, "0.1"), "labels.txt", b"a\n")
    # A draft's files: seen by those who may change the model (a member).
    response = catalog.client("member").get(file_url(model, "0.1", "labels.txt"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_if_none_match_with_the_etag_answers_304_without_a_body(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    etag = f'"{sha256_of(iris_bytes())}"'
    client = catalog.client("viewer")
    response = client.get(file_url(model, "1.0", "model.onnx"), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert body_of(response) == b""
    assert response.headers["ETag"] == etag
    assert client.get(file_url(model, "1.0", "model.onnx"), HTTP_IF_NONE_MATCH=f"W/{etag}").status_code == 304
    assert client.get(file_url(model, "1.0", "model.onnx"), HTTP_IF_NONE_MATCH='"other", *').status_code == 304
    assert client.get(file_url(model, "1.0", "model.onnx"), HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_head_gives_the_headers_and_no_body(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    response = catalog.client("viewer").head(file_url(model, "1.0", "model.onnx"))
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(iris_bytes()))
    assert body_of(response) == b""


def test_a_missing_file_is_404(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    assert catalog.client("viewer").get(file_url(model, "1.0", "nope.onnx")).status_code == 404
    assert catalog.client("viewer").get(file_url(model, "9.9", "model.onnx")).status_code == 404


def test_a_client_that_accepts_only_bytes_still_gets_them(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    response = catalog.client("viewer").get(
        file_url(model, "1.0", "model.onnx"), HTTP_ACCEPT="application/octet-stream"
    )
    assert response.status_code == 200
    assert body_of(response) == iris_bytes()
