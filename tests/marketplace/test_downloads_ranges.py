"""HTTP Range requests: one range (206 with Content-Range), several (206 multipart/byteranges), none
satisfiable (416), and If-Range that no longer matches (the whole file)."""

from __future__ import annotations

import email
import email.policy

import pytest

from apps.marketplace.downloads import Unsatisfiable, parse_range_header
from tests.marketplace.conftest import body_of, file_url, iris_bytes, random_bytes, sha256_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def weights(catalog):
    model = catalog.model("minilm")
    data = random_bytes(100_000)
    catalog.published(model, "1.0", files={"model.onnx": iris_bytes(), "weights.bin": data})
    return model, data


def test_a_single_range_answers_206_with_the_slice(catalog, weights):
    model, data = weights
    response = catalog.client("viewer").get(file_url(model, "1.0", "weights.bin"), HTTP_RANGE="bytes=100-1099")
    assert response.status_code == 206
    assert body_of(response) == data[100:1100]
    assert response.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert response.headers["Content-Length"] == "1000"
    assert response.headers["ETag"] == f'"{sha256_of(data)}"'


def test_open_and_suffix_ranges_resume_a_download(catalog, weights):
    model, data = weights
    client = catalog.client("viewer")
    resumed = client.get(file_url(model, "1.0", "weights.bin"), HTTP_RANGE="bytes=99000-")
    assert resumed.status_code == 206
    assert body_of(resumed) == data[99000:]
    tail = client.get(file_url(model, "1.0", "weights.bin"), HTTP_RANGE="bytes=-10")
    assert body_of(tail) == data[-10:]
    assert tail.headers["Content-Range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"
    past_end = client.get(file_url(model, "1.0", "weights.bin"), HTTP_RANGE="bytes=99990-200000")
    assert body_of(past_end) == data[99990:]


def test_several_ranges_answer_multipart_byteranges(catalog, weights):
    model, data = weights
    response = catalog.client("viewer").get(file_url(model, "1.0", "weights.bin"), HTTP_RANGE="bytes=0-9, 500-599, -5")
    assert response.status_code == 206
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    body = body_of(response)
    assert response.headers["Content-Length"] == str(len(body))
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    parts = [(part["Content-Range"], part.get_payload(decode=True)) for part in message.iter_parts()]
    size = len(data)
    assert parts == [
        (f"bytes 0-9/{size}", data[0:10]),
        (f"bytes 500-599/{size}", data[500:600]),
        (f"bytes {size - 5}-{size - 1}/{size}", data[-5:]),
    ]


def test_a_range_beyond_the_file_answers_416(catalog, weights):
    model, data = weights
    response = catalog.client("viewer").get(file_url(model, "1.0", "weights.bin"), HTTP_RANGE="bytes=200000-300000")
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"


def test_a_malformed_range_is_ignored_and_the_whole_file_sent(catalog, weights):
    model, data = weights
    response = catalog.client("viewer").get(file_url(model, "1.0", "weights.bin"), HTTP_RANGE="bytes=abc")
    assert response.status_code == 200
    assert body_of(response) == data


def test_if_range_with_another_etag_sends_the_whole_file(catalog, weights):
    model, data = weights
    client = catalog.client("viewer")
    stale = client.get(file_url(model, "1.0", "weights.bin"), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"old"')
    assert stale.status_code == 200
    assert body_of(stale) == data
    fresh = client.get(
        file_url(model, "1.0", "weights.bin"), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=f'"{sha256_of(data)}"'
    )
    assert fresh.status_code == 206


def test_range_parsing_rules():
    assert parse_range_header(None, 100) is None
    assert parse_range_header("bytes=0-0", 100) == [(0, 0)]
    assert parse_range_header("bytes=5-", 100) == [(5, 99)]
    assert parse_range_header("bytes=-500", 100) == [(0, 99)]
    assert parse_range_header("items=0-5", 100) is None
    assert parse_range_header("bytes=9-3", 100) is None
    assert parse_range_header("bytes=0-1,200-300", 100) == [(0, 1)]
    with pytest.raises(Unsatisfiable):
        parse_range_header("bytes=100-", 100)
