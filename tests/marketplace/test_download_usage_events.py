"""Every download writes a usage event: who, which version and file, how many bytes, which status."""

from __future__ import annotations

import pytest

from apps.analytics.models import UsageEvent
from tests.marketplace.conftest import file_url, iris_bytes, sha256_of
from tests.usage_support import drained

pytestmark = pytest.mark.django_db


def test_a_download_writes_one_usage_event_with_the_bytes_sent(catalog):
    model = catalog.model("iris")
    version = catalog.published(model, "1.0")
    catalog.client("viewer").get(file_url(model, "1.0", "model.onnx"))
    event = drained(UsageEvent).get()
    assert event.kind == "download"
    assert event.organization == catalog.world.org
    assert event.actor == catalog.world.user("viewer")
    assert event.subject_type == "marketplace.modelversion"
    assert event.subject_id == str(version.uuid)
    assert event.subject_label == "acme/iris@1.0"
    assert event.path == "model.onnx"
    assert event.blob_sha256 == sha256_of(iris_bytes())
    assert event.bytes == len(iris_bytes())
    assert event.status_code == 200


def test_ranged_and_conditional_downloads_count_what_they_sent(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    client = catalog.client("viewer")
    client.get(file_url(model, "1.0", "model.onnx"), HTTP_RANGE="bytes=0-99")
    client.get(file_url(model, "1.0", "model.onnx"), HTTP_IF_NONE_MATCH=f'"{sha256_of(iris_bytes())}"')
    events = list(drained(UsageEvent).order_by("id").values_list("status_code", "bytes"))
    assert events == [(206, 100), (304, 0)]


def test_anonymous_downloads_of_public_models_count_without_an_actor(catalog):
    model = catalog.model("iris", visibility="public")
    catalog.published(model, "1.0")
    catalog.client("anonymous").get(file_url(model, "1.0", "model.onnx"))
    event = drained(UsageEvent).get()
    assert event.actor is None
    assert event.organization == catalog.world.org


def test_refused_requests_and_head_write_no_usage(catalog):
    model = catalog.model("iris")
    catalog.published(model, "1.0")
    catalog.client("outsider").get(file_url(model, "1.0", "model.onnx"))
    catalog.client("viewer").head(file_url(model, "1.0", "model.onnx"))
    catalog.client("viewer").get(file_url(model, "1.0", "model.onnx"), HTTP_RANGE="bytes=999999-")
    assert not drained(UsageEvent).exists()
