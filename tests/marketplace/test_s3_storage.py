"""The catalog on S3: the blob store, a multipart/form-data upload, a resumable upload (stored as an S3 multipart
upload), validation, the purge and downloads (whole, Range, several ranges, and ``DOWNLOAD_OFFLOAD = "storage-url"``
presigned links) against a real S3-compatible HTTP server on loopback.

The server is moto's standalone server (tests/peers/s3.py), started as a subprocess: a real S3 protocol server
that answers SigV4-signed HTTP requests, not a mock of boto3. The portal reaches it exactly as in production:
``STORAGES["default"]`` is django-storages' ``S3Storage`` with an ``endpoint_url`` (path-style addressing), and
every byte goes over HTTP. MinIO, the usual self-hosted S3, is not used because its server is neither on PyPI nor
in Debian here. Each test gets its own bucket; the local media folder must stay empty throughout. One limit:
moto does not verify presigned signatures or their expiry, so those rest on the real store.
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from storages.backends.s3 import S3Storage

from apps.marketplace.models import Blob, ValidationStatus, VersionFile, blob_storage_name
from apps.marketplace.purge import collect_unreferenced_blobs
from apps.marketplace.tasks import validate_version
from apps.marketplace.validation import materialize_files
from tests.marketplace.conftest import body_of, file_url, iris_bytes, random_bytes, sha256_of, stored_files, version_url
from tests.peers.s3 import S3Server, s3_server  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.django_db


class Bucket:
    """The test's bucket, read directly with boto3 to see what the portal stored."""

    def __init__(self, server: S3Server, name: str) -> None:
        self.server = server
        self.name = name
        self.client = server.client()

    def keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture
def bucket(settings, s3_server: S3Server, catalog_storage) -> Bucket:  # noqa: F811
    """The default storage is S3Storage on a fresh bucket of the loopback server (the ``settings`` fixture sends
    setting_changed, which resets ``default_storage``; it is restored after the test)."""
    name = s3_server.create_bucket()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_server.storage_options(name)},
    }
    assert isinstance(storages["default"], S3Storage)
    assert default_storage.bucket_name == name
    return Bucket(s3_server, name)


@pytest.fixture
def weights(catalog, bucket):
    """A published version whose files were stored through the API's services into the bucket."""
    model = catalog.model("minilm")
    data = random_bytes(300_000)
    catalog.published(model, "1.0", files={"model.onnx": iris_bytes(), "weights.bin": data})
    return model, data


def test_a_multipart_upload_lands_in_the_bucket_under_its_content_address(catalog, bucket, catalog_storage):
    model = catalog.model("iris")
    catalog.version(model, "0.1")
    catalog.version(model, "0.2")
    data = iris_bytes()
    client = catalog.client("member")
    for label in ("0.1", "0.2"):
        response = client.post(
            version_url(model, label, "files/"), {"file": SimpleUploadedFile("model.onnx", data)}, format="multipart"
        )
        assert response.status_code == 201, response.content
        assert response.json()["sha256"] == sha256_of(data)

    name = blob_storage_name(sha256_of(data))
    assert bucket.keys() == [name]  # the same bytes twice: one object
    assert bucket.read(name) == data
    assert Blob.objects.get().storage_name == name
    assert VersionFile.objects.filter(blob__sha256=sha256_of(data)).count() == 2
    assert stored_files(catalog_storage / "media") == []  # nothing written to the local file system storage
    assert stored_files(catalog_storage / "uploads") == []  # the spool is empty again


def test_a_resumable_upload_completes_into_the_bucket(catalog, bucket, catalog_storage):
    model = catalog.model("big")
    catalog.version(model, "1.0")
    data = random_bytes(9 * 1024 * 1024 + 123)  # three chunks of 4 MiB; above boto3's 8 MiB multipart threshold
    client = catalog.client("member")
    started = client.post(
        version_url(model, "1.0", "uploads/"),
        {"path": "weights.bin", "size": len(data), "sha256": sha256_of(data)},
        format="json",
    )
    assert started.status_code == 201, started.content
    session = started.json()
    chunk = 4 * 1024 * 1024
    for offset in range(0, len(data), chunk):
        piece = data[offset : offset + chunk]
        response = client.generic(
            "PATCH",
            session["upload_url"],
            data=piece,
            content_type="application/offset+octet-stream",
            HTTP_UPLOAD_OFFSET=str(offset),
        )
        assert response.status_code == 200, response.content

    completed = client.post(session["complete_url"])
    assert completed.status_code == 201, completed.content
    name = blob_storage_name(sha256_of(data))
    assert bucket.keys() == [name]
    assert bucket.read(name) == data
    # S3 names a multipart object's ETag by its part count: the store went to S3 as a two-part upload.
    assert bucket.client.head_object(Bucket=bucket.name, Key=name)["ETag"].endswith('-2"')
    assert stored_files(catalog_storage / "media") == []
    assert stored_files(catalog_storage / "uploads") == []


def test_the_validation_job_fetches_the_files_from_the_bucket(catalog, bucket, tmp_path):
    version = catalog.version(catalog.model("iris"))
    catalog.add(version, "model.onnx", iris_bytes())

    materialize_files(version, tmp_path / "fetched")
    assert (tmp_path / "fetched" / "model.onnx").read_bytes() == iris_bytes()

    version.refresh_from_db()
    validate_version.run(version.validation_job_id)
    version.refresh_from_db()
    assert version.validation_status == ValidationStatus.PASSED, version.validation_message


def test_downloads_stream_from_the_bucket_whole_and_ranged(catalog, weights):
    model, data = weights
    client = catalog.client("viewer")
    url = file_url(model, "1.0", "weights.bin")

    whole = client.get(url)
    assert whole.status_code == 200
    assert body_of(whole) == data
    assert whole.headers["Content-Length"] == str(len(data))
    assert whole.headers["ETag"] == f'"{sha256_of(data)}"'

    single = client.get(url, HTTP_RANGE="bytes=1000-1999")
    assert single.status_code == 206
    assert body_of(single) == data[1000:2000]
    assert single.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"

    resumed = client.get(url, HTTP_RANGE="bytes=299990-")
    assert body_of(resumed) == data[299990:]

    several = client.get(url, HTTP_RANGE="bytes=0-9, 150000-150099, -5")
    assert several.status_code == 206
    content_type = several.headers["Content-Type"]
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body_of(several), policy=email.policy.HTTP
    )
    assert [part.get_payload(decode=True) for part in message.iter_parts()] == [
        data[0:10],
        data[150000:150100],
        data[-5:],
    ]

    assert client.get(url, HTTP_RANGE="bytes=400000-").status_code == 416
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"{sha256_of(data)}"').status_code == 304


def test_storage_url_offload_redirects_to_a_presigned_url_the_server_honours(catalog, weights, bucket, settings):
    settings.DOWNLOAD_OFFLOAD = "storage-url"
    model, data = weights
    client = catalog.client("viewer")

    response = client.get(file_url(model, "1.0", "weights.bin"))
    assert response.status_code == 302
    location = response["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == bucket.server.endpoint_url
    assert parts.path == f"/{bucket.name}/{blob_storage_name(sha256_of(data))}"
    assert "X-Amz-Signature" in parse_qs(parts.query)

    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == data
    # Saved under the file's name, not its digest: the signed URL asks S3 for the portal's Content-Disposition.
    assert fetched.headers["Content-Disposition"].startswith('attachment; filename="weights.bin"')
    ranged = requests.get(location, headers={"Range": "bytes=100-199"}, timeout=10)
    assert ranged.status_code == 206
    assert ranged.content == data[100:200]

    link = client.get(version_url(model, "1.0", "links/weights.bin"))
    assert link.status_code == 200
    linked = requests.get(link.json()["url"], timeout=10)
    assert linked.status_code == 200
    assert linked.content == data

    # Offload still checks access first: an outsider gets no presigned URL.
    assert catalog.client("outsider").get(file_url(model, "1.0", "weights.bin")).status_code == 404


def test_the_purge_deletes_an_unreferenced_object_from_the_bucket(catalog, bucket, django_capture_on_commit_callbacks):
    version = catalog.version(catalog.model("iris"))
    catalog.add(version, "notes.txt", b"scratch notes")
    blob = Blob.objects.get()
    assert bucket.keys() == [blob.storage_name]
    VersionFile.objects.filter(version=version).delete()

    with django_capture_on_commit_callbacks(execute=True):
        collected = collect_unreferenced_blobs(now=timezone.now() + timedelta(days=1))
    assert collected == [blob.sha256]
    assert bucket.keys() == []


def test_a_ranged_download_asks_the_bucket_only_for_the_bytes_from_the_range_on(catalog, weights):
    """The portal streams from S3 in constant memory: a GET per answer, starting at the range, never the whole
    object first (django-storages' S3File would download all of it, into memory by default, on the first read)."""
    model, data = weights
    asked: list[str | None] = []

    def record(request, **kwargs) -> None:
        value = request.headers.get("Range")
        asked.append(value.decode() if isinstance(value, bytes) else value)

    default_storage.connection.meta.client.meta.events.register("before-send.s3.GetObject", record)
    client = catalog.client("viewer")
    url = file_url(model, "1.0", "weights.bin")

    assert body_of(client.get(url, HTTP_RANGE="bytes=250000-250999")) == data[250000:251000]
    assert asked == ["bytes=250000-"]
    asked.clear()
    assert body_of(client.get(url)) == data
    assert asked == [None]  # the whole object, streamed in one GET
    asked.clear()
    several = body_of(client.get(url, HTTP_RANGE="bytes=0-9, 200000-200009"))
    assert data[0:10] in several
    assert data[200000:200010] in several
    assert asked == [None, "bytes=200000-"]  # one GET per range, each from its start
