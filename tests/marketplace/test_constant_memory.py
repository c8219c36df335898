"""Uploads and downloads stream: a 64 MiB file passes through in pieces, never whole in memory (tracemalloc's
peak stays a small fraction of the file's size)."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest
from django.test import RequestFactory

from apps.marketplace import downloads, storage, uploads
from apps.marketplace.models import Blob
from tests.marketplace.conftest import version_url

pytestmark = pytest.mark.django_db

SIZE = 64 * 1024 * 1024
PIECE = b"\x5a" * (1024 * 1024)
LIMIT = 16 * 1024 * 1024  # a quarter of the file: anything holding it whole would blow through this


class ZeroCopyStream:
    """A request body that produces its bytes as they are read (like a socket), holding none of them."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return (PIECE * (n // len(PIECE) + 1))[:n] if n else b""


def _digest() -> str:
    digest = hashlib.sha256()
    for _ in range(SIZE // len(PIECE)):
        digest.update(PIECE)
    return digest.hexdigest()


def test_a_chunked_upload_and_its_completion_stream(catalog):
    model = catalog.model("big")
    version = catalog.version(model, "1.0")
    session = uploads.create_upload_session(
        version=version, actor=catalog.world.user("member"), path="weights.bin", size=SIZE, sha256=_digest()
    )
    tracemalloc.start()
    try:
        uploads.write_chunk(session=session, offset=0, stream=ZeroCopyStream(SIZE), length=SIZE)
        uploads.complete_upload_session(session=session, actor=catalog.world.user("member"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert Blob.objects.get().size == SIZE
    assert peak < LIMIT, f"peak {peak} bytes"


def test_a_whole_and_a_ranged_download_stream(catalog):
    spooled = storage.spool_chunks(PIECE for _ in range(SIZE // len(PIECE)))
    blob = storage.store_spooled(spooled)
    delivery = downloads.Delivery(blob=blob, filename="weights.bin", cache_control="private, no-cache")
    factory = RequestFactory()
    tracemalloc.start()
    try:
        for headers in ({}, {"HTTP_RANGE": "bytes=1000-"}, {"HTTP_RANGE": "bytes=0-10,1000-50000000"}):
            response = downloads.serve_blob(factory.get("/x", **headers), delivery)
            sent = sum(len(piece) for piece in response.streaming_content)
            assert sent >= SIZE - 50_000_000
            response.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < LIMIT, f"peak {peak} bytes"


def test_the_upload_route_reads_the_body_without_parsing_it(catalog):
    model = catalog.model("big")
    catalog.version(model, "1.0")
    data = b"x" * 3_000_000  # above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): a parsed body would be refused
    client = catalog.client("member")
    url = client.post(
        version_url(model, "1.0", "uploads/"),
        {"path": "x.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        format="json",
    ).json()["upload_url"]
    response = client.generic(
        "PATCH", url, data=data, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="0"
    )
    assert response.status_code == 200, response.content
    assert response.json()["offset"] == len(data)
