"""Resumable chunked uploads: the MiniLM model (23 MB) in chunks, resuming from the offset the server reports,
a wrong offset refused with the expected one, the checksum verified at the end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.marketplace.models import Blob, UploadSession, VersionFile
from tests.marketplace.conftest import minilm_path, random_bytes, sha256_of, stored_files, version_url

pytestmark = pytest.mark.django_db

CHUNK = 4 * 1024 * 1024


def _start(client, model, label, path, data, sha256=None):
    response = client.post(
        version_url(model, label, "uploads/"),
        {"path": path, "size": len(data), "sha256": sha256 or sha256_of(data)},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response


def _patch(client, url, chunk: bytes, offset: int, header: bool = True):
    extra = {"HTTP_UPLOAD_OFFSET": str(offset)} if header else {}
    target = url if header else f"{url}?offset={offset}"
    return client.generic("PATCH", target, data=chunk, content_type="application/offset+octet-stream", **extra)


def test_minilm_uploads_in_chunks_and_joins_the_version(catalog, catalog_storage):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = minilm_path().read_bytes()
    client = catalog.client("member")
    started = _start(client, model, "1.0", "model.onnx", data).json()
    assert started["offset"] == 0
    url = started["upload_url"]

    offset = 0
    while offset < len(data):
        chunk = data[offset : offset + CHUNK]
        response = _patch(client, url, chunk, offset, header=offset % (2 * CHUNK) == 0)
        assert response.status_code == 200, response.content
        offset += len(chunk)
        assert response.json()["offset"] == offset
        assert response.headers["Upload-Offset"] == str(offset)

    head = client.head(url)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == str(len(data))

    response = client.post(started["complete_url"])
    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == sha256_of(data)
    assert response.json()["size"] == len(data)
    assert VersionFile.objects.get(path="model.onnx").blob.sha256 == sha256_of(data)
    assert UploadSession.objects.get().status == "completed"
    assert stored_files(catalog_storage / "uploads") == []


def test_a_chunk_at_the_wrong_offset_answers_409_with_the_expected_offset(catalog):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = random_bytes(3000)
    client = catalog.client("member")
    url = _start(client, model, "1.0", "weights.bin", data).json()["upload_url"]
    assert _patch(client, url, data[:1000], 0).status_code == 200

    response = _patch(client, url, data[2000:], 2000)
    assert response.status_code == 409
    assert response.json()["expected_offset"] == 1000
    assert response.json()["code"] == "offset_mismatch"

    resend = _patch(client, url, data[:1000], 0)  # a retried chunk the server already has
    assert resend.status_code == 409
    assert client.get(url).json()["offset"] == 1000

    assert _patch(client, url, data[1000:], 1000).status_code == 200
    assert client.post(f"{url}complete/").status_code == 201


def test_a_checksum_mismatch_stores_nothing_and_names_sha256(catalog, catalog_storage):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = random_bytes(5000)
    client = catalog.client("member")
    url = _start(client, model, "1.0", "weights.bin", data, sha256=sha256_of(b"something else")).json()["upload_url"]
    assert _patch(client, url, data, 0).status_code == 200
    response = client.post(f"{url}complete/")
    assert response.status_code == 400
    assert response.json()["codes"]["sha256"] == ["checksum_mismatch"]
    assert not Blob.objects.exists()
    assert not VersionFile.objects.exists()
    assert stored_files(catalog_storage / "uploads") == []
    assert stored_files(catalog_storage / "media") == []
    assert UploadSession.objects.get().status == "failed"
    assert _patch(client, url, data, 0).status_code == 410


def test_completing_before_all_bytes_arrived_is_refused(catalog):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = random_bytes(2000)
    client = catalog.client("member")
    url = _start(client, model, "1.0", "weights.bin", data).json()["upload_url"]
    _patch(client, url, data[:500], 0)
    response = client.post(f"{url}complete/")
    assert response.status_code == 400
    assert response.json()["codes"]["size"] == ["incomplete"]


def test_a_chunk_past_the_declared_size_is_refused(catalog):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = random_bytes(100)
    client = catalog.client("member")
    url = _start(client, model, "1.0", "weights.bin", data).json()["upload_url"]
    response = _patch(client, url, data + b"extra", 0)
    assert response.status_code == 400
    assert client.get(url).json()["offset"] == 0


def test_a_missing_or_malformed_offset_names_the_field(catalog):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = random_bytes(100)
    client = catalog.client("member")
    url = _start(client, model, "1.0", "weights.bin", data).json()["upload_url"]
    response = client.generic("PATCH", url, data=data, content_type="application/offset+octet-stream")
    assert response.status_code == 400
    assert "offset" in response.json()
    response = client.generic(
        "PATCH", url, data=data, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="zero"
    )
    assert response.status_code == 400
    assert "offset" in response.json()


def test_a_malformed_session_request_names_the_field(catalog):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    client = catalog.client("member")
    response = client.post(
        version_url(model, "1.0", "uploads/"), {"path": "a.bin", "size": -1, "sha256": "0" * 64}, format="json"
    )
    assert response.status_code == 400 and "size" in response.json()
    response = client.post(
        version_url(model, "1.0", "uploads/"), {"path": "a.bin", "size": 1, "sha256": "z" * 64}, format="json"
    )
    assert response.status_code == 400 and "sha256" in response.json()


def test_an_aborted_session_is_gone(catalog, catalog_storage):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = random_bytes(100)
    client = catalog.client("member")
    url = _start(client, model, "1.0", "weights.bin", data).json()["upload_url"]
    _patch(client, url, data[:50], 0)
    assert client.delete(url).status_code == 204
    assert _patch(client, url, data[50:], 50).status_code == 410
    assert client.post(f"{url}complete/").status_code == 410
    assert stored_files(catalog_storage / "uploads") == []


def test_an_expired_session_is_gone(catalog):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = random_bytes(100)
    client = catalog.client("member")
    url = _start(client, model, "1.0", "weights.bin", data).json()["upload_url"]
    UploadSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _patch(client, url, data, 0)
    assert response.status_code == 410
    assert response.json()["code"] == "upload_gone"
    assert UploadSession.objects.get().status == "expired"


def test_outsider_and_viewer_get_404_on_someone_elses_session_in_a_draft(catalog):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = random_bytes(100)
    url = _start(catalog.client("member"), model, "1.0", "weights.bin", data).json()["upload_url"]
    assert _patch(catalog.client("outsider"), url, data, 0).status_code == 404
    assert catalog.client("outsider").get(url).status_code == 404
    assert _patch(catalog.client("viewer"), url, data, 0).status_code == 404  # a draft: not the viewer's to see
    assert catalog.client("member").get(url).json()["offset"] == 0


def test_a_client_that_lost_its_upload_url_finds_the_open_session(catalog):
    model = catalog.model("minilm")
    catalog.version(model, "1.0")
    data = random_bytes(100)
    client = catalog.client("member")
    started = _start(client, model, "1.0", "weights.bin", data).json()
    _patch(client, started["upload_url"], data[:40], 0)
    listed = client.get(version_url(model, "1.0", "uploads/")).json()
    assert [(s["uuid"], s["path"], s["offset"]) for s in listed] == [(started["uuid"], "weights.bin", 40)]
    assert catalog.client("viewer").get(version_url(model, "1.0", "uploads/")).status_code == 403
    assert catalog.client("outsider").get(version_url(model, "1.0", "uploads/")).status_code == 404
