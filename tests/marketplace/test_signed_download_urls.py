"""Signed, expiring download links: they work without a token until they expire; tampered, expired or
borrowed for other bytes they answer 403."""

from __future__ import annotations

import time

import pytest
from django.core import signing

from apps.analytics.models import UsageEvent
from apps.marketplace.downloads import SIGNING_SALT
from tests.marketplace.conftest import body_of, iris_bytes, random_bytes, sha256_of, version_url
from tests.usage_support import drained

pytestmark = pytest.mark.django_db


def _link(catalog, model, label="1.0", path="model.onnx", persona="viewer"):
    response = catalog.client(persona).get(version_url(model, label, f"links/{path}"))
    assert response.status_code == 200, response.content
    return response.json()


def test_a_signed_link_downloads_without_a_token_and_is_immutable(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    link = _link(catalog, model)
    assert link["sha256"] == sha256_of(iris_bytes())
    assert link["size"] == len(iris_bytes())
    response = catalog.client("anonymous").get(link["url"])
    assert response.status_code == 200
    assert body_of(response) == iris_bytes()
    assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    event = drained(UsageEvent).get()
    assert event.actor == catalog.world.user("viewer")  # counted for whoever asked for the link
    assert event.metadata["route"] == "signed"


def test_outsider_cannot_get_a_link_to_a_private_model(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    assert catalog.client("outsider").get(version_url(model, "1.0", "links/model.onnx")).status_code == 404


def test_a_tampered_link_answers_403(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    url = _link(catalog, model)["url"]
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    response = catalog.client("anonymous").get(tampered)
    assert response.status_code == 403
    assert response.json()["code"] == "bad_signature"
    assert not drained(UsageEvent).exists()


def test_an_expired_link_answers_403(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    version = model.versions.get()
    sha = sha256_of(iris_bytes())

    class TwoHoursAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - 7200)

    token = TwoHoursAgo(salt=SIGNING_SALT).sign_object(
        {"s": sha, "u": catalog.world.user("viewer").pk, "v": str(version.uuid), "p": "model.onnx"}, compress=True
    )
    response = catalog.client("anonymous").get(f"/api/v1/blobs/sha256/{sha}?token={token}")
    assert response.status_code == 403
    assert response.json()["code"] == "signature_expired"


def test_a_link_for_one_blob_does_not_open_another(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0", files={"model.onnx": iris_bytes(), "weights.bin": random_bytes(100)})
    url = _link(catalog, model)["url"]
    token = url.split("token=", 1)[1]
    other = "0" * 64  # bytes nobody stored
    weights_sha = model.versions.get().files.get(path="weights.bin").blob.sha256
    for sha in (weights_sha, other):
        response = catalog.client("anonymous").get(f"/api/v1/blobs/sha256/{sha}?token={token}")
        assert response.status_code == 403


def test_the_content_address_serves_members_without_a_signature(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    sha = sha256_of(iris_bytes())
    response = catalog.client("viewer").get(f"/api/v1/blobs/sha256/{sha}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert catalog.client("outsider").get(f"/api/v1/blobs/sha256/{sha}").status_code == 404
    assert catalog.client("anonymous").get(f"/api/v1/blobs/sha256/{sha}").status_code == 404
    assert catalog.client("viewer").get(f"/api/v1/blobs/sha256/{'0' * 64}").status_code == 404
