"""The organization's storage quota is enforced before an upload is accepted and again once its bytes are in:
an upload over quota answers 403 naming the quota and leaves nothing (no blob, no stored file, no spool file)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.marketplace import storage
from apps.marketplace.models import Blob, UploadSession, VersionFile
from tests.marketplace.conftest import random_bytes, sha256_of, stored_files, version_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_quota(catalog):
    catalog.world.org.storage_quota_bytes = 10_000
    catalog.world.org.save(update_fields=["storage_quota_bytes"])
    return catalog.world.org


def test_a_multipart_upload_over_quota_answers_403_naming_the_quota_and_stores_nothing(
    catalog, small_quota, catalog_storage
):
    model = catalog.model("big")
    catalog.version(model, "0.1")
    response = catalog.client("member").post(
        version_url(model, "0.1", "files/"),
        {"file": SimpleUploadedFile("weights.bin", random_bytes(20_000))},
        format="multipart",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "quota_exceeded"
    assert "quota" in response.json()["detail"]
    assert not Blob.objects.exists()
    assert not VersionFile.objects.exists()
    assert stored_files(catalog_storage / "media") == []
    assert stored_files(catalog_storage / "uploads") == []


def test_the_service_refuses_bytes_beyond_the_quota_even_without_a_declared_size(catalog, small_quota, catalog_storage):
    model = catalog.model("big")
    version = catalog.version(model, "0.1")

    class Unsized:
        """A stream whose size nobody declared: the quota is checked while it is read."""

        def __init__(self, data: bytes) -> None:
            import io

            self._io = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._io.read(n)

    from apps.marketplace import services
    from apps.marketplace.exceptions import QuotaExceeded

    with pytest.raises(QuotaExceeded):
        services.add_file(
            version=version, actor=catalog.world.user("member"), path="w.bin", uploaded=Unsized(random_bytes(50_000))
        )
    assert not Blob.objects.exists()
    assert stored_files(catalog_storage / "uploads") == []


def test_an_upload_session_over_quota_is_refused_when_it_is_declared(catalog, small_quota):
    model = catalog.model("big")
    catalog.version(model, "0.1")
    response = catalog.client("member").post(
        version_url(model, "0.1", "uploads/"), {"path": "w.bin", "size": 10_001, "sha256": "0" * 64}, format="json"
    )
    assert response.status_code == 403
    assert not UploadSession.objects.exists()


def test_open_sessions_reserve_their_declared_size(catalog, small_quota):
    model = catalog.model("big")
    catalog.version(model, "0.1")
    client = catalog.client("member")
    first = client.post(
        version_url(model, "0.1", "uploads/"), {"path": "a.bin", "size": 6_000, "sha256": "1" * 64}, format="json"
    )
    assert first.status_code == 201
    second = client.post(
        version_url(model, "0.1", "uploads/"), {"path": "b.bin", "size": 6_000, "sha256": "2" * 64}, format="json"
    )
    assert second.status_code == 403
    assert client.delete(first.json()["upload_url"]).status_code == 204
    third = client.post(
        version_url(model, "0.1", "uploads/"), {"path": "b.bin", "size": 6_000, "sha256": "2" * 64}, format="json"
    )
    assert third.status_code == 201


def test_a_completed_session_counts_once(catalog, small_quota):
    model = catalog.model("big")
    catalog.version(model, "0.1")
    client = catalog.client("member")
    data = random_bytes(9_000)
    url = client.post(
        version_url(model, "0.1", "uploads/"),
        {"path": "a.bin", "size": len(data), "sha256": sha256_of(data)},
        format="json",
    ).json()["upload_url"]
    client.generic("PATCH", url, data=data, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="0")
    assert client.post(f"{url}complete/").status_code == 201
    usage = client.get("/api/v1/orgs/acme/storage/").json()
    assert usage == {"quota_bytes": 10_000, "used_bytes": 9_000, "reserved_bytes": 0, "available_bytes": 1_000}


def test_bytes_the_organization_already_stores_cost_nothing_more(catalog, small_quota):
    model = catalog.model("big")
    data = random_bytes(8_000)
    catalog.add(catalog.version(model, "0.1"), "w.bin", data)
    catalog.version(model, "0.2")
    client = catalog.client("member")
    # Declared: the multipart upload names the digest in its URL (read before the body); a session always does.
    response = client.post(
        version_url(model, "0.2", f"files/?sha256={sha256_of(data)}"),
        {"file": SimpleUploadedFile("w.bin", data)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    response = client.post(
        version_url(model, "0.2", "uploads/"),
        {"path": "x.bin", "size": len(data), "sha256": sha256_of(data)},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert storage.stored_bytes(small_quota) == 8_000


def test_a_declared_digest_that_does_not_match_stores_nothing(catalog, catalog_storage):
    model = catalog.model("big")
    catalog.version(model, "0.1")
    response = catalog.client("member").post(
        version_url(model, "0.1", "files/"),
        {"file": SimpleUploadedFile("w.bin", b"actual bytes"), "sha256": sha256_of(b"other bytes")},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["codes"]["sha256"] == ["checksum_mismatch"]
    assert not Blob.objects.exists()
    assert stored_files(catalog_storage / "uploads") == []


def test_the_default_quota_applies_when_the_organization_has_none(catalog, settings):
    settings.DEFAULT_STORAGE_QUOTA_BYTES = 1_000
    model = catalog.model("big")
    catalog.version(model, "0.1")
    response = catalog.client("member").post(
        version_url(model, "0.1", "files/"),
        {"file": SimpleUploadedFile("w.bin", random_bytes(2_000))},
        format="multipart",
    )
    assert response.status_code == 403


def test_outsider_gets_404_on_an_organizations_storage(catalog):
    assert catalog.client("outsider").get("/api/v1/orgs/acme/storage/").status_code == 404
    assert catalog.client("viewer").get("/api/v1/orgs/acme/storage/").status_code == 200
