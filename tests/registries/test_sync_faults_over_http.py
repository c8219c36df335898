"""Faults of a real HTTP registry (the FaultyRegistry peer on loopback) met by a real sync of the HTTP index.

Each fault named by the issue: 500, 429 with Retry-After, a timeout, malformed JSON, endless pagination, a listed
file that 404s, bytes whose checksum does not match, wrong credentials. In every case the sync records it,
keeps what it had, and finishes.
"""

from __future__ import annotations

import time

import pytest

from apps.core.jobs import JobStatus
from apps.marketplace.models import Model, VersionFile
from apps.registries.models import RegistryModel
from tests.peers.faulty_registry import FaultyRegistry
from tests.registries.support import make_registry, run_sync

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.REGISTRY_HTTP_TIMEOUT_SECONDS = 1


def http_registry(world, url: str, **fields):
    config = {"url": url, "page_size": 2, **fields.pop("config", {})}
    return make_registry(world.org, world.user("owner"), backend="http-index", slug="index", config=config, **fields)


def test_a_registry_answering_500_fails_the_run_with_the_status_and_keeps_the_catalog(world, faulty_registry):
    registry = http_registry(world, faulty_registry.url)
    assert run_sync(registry).created == 3
    faulty_registry.faults.status = 500
    sync = run_sync(registry)

    assert sync.job.status == JobStatus.FAILED and "HTTP 500" in sync.job.error
    assert sync.retries == 3  # REGISTRY_RETRY_ATTEMPTS in tests
    assert Model.objects.filter(source_registry="index").count() == 3
    assert not RegistryModel.objects.filter(removed_upstream_at__isnull=False).exists()


def test_429_with_retry_after_is_waited_for_and_the_sync_completes(world, faulty_registry):
    faulty_registry.faults.rate_limit(count=2, retry_after=1)
    started = time.monotonic()
    sync = run_sync(http_registry(world, faulty_registry.url))

    assert sync.job.status == JobStatus.SUCCEEDED and sync.created == 3
    assert sync.retries == 2
    assert [r.status for r in faulty_registry.requests][:3] == [429, 429, 200]
    assert time.monotonic() - started >= 2  # the two Retry-After: 1 were honoured, not a quicker backoff


def test_a_registry_that_times_out_is_recorded_as_unavailable(world, faulty_registry):
    faulty_registry.faults.hang = 5
    sync = run_sync(http_registry(world, faulty_registry.url))

    assert sync.job.status == JobStatus.FAILED
    assert "did not answer in time" in sync.job.error


def test_malformed_json_fails_the_listing_with_invalid_response(world, faulty_registry):
    faulty_registry.faults.malformed_index = True
    sync = run_sync(http_registry(world, faulty_registry.url))

    assert sync.job.status == JobStatus.FAILED and "InvalidResponse" in sync.job.error


def test_a_malformed_line_of_json_lines_costs_one_model_not_the_sync(world, faulty_registry):
    faulty_registry.faults.malformed_index = True
    sync = run_sync(http_registry(world, faulty_registry.jsonl_url))

    assert sync.job.status == JobStatus.SUCCEEDED
    assert sync.created == 3 and sync.failed == 1
    assert "not valid JSON" in sync.errors[0]["error"]


def test_a_registry_that_paginates_forever_is_stopped_at_the_page_cap(world, faulty_registry, settings):
    settings.REGISTRY_MAX_PAGES = 10
    faulty_registry.faults.endless_pages = True
    sync = run_sync(http_registry(world, faulty_registry.url))

    assert sync.job.status == JobStatus.FAILED and "more than 10 pages" in sync.job.error
    assert sync.pages == 10 and not sync.complete


def test_a_listed_file_that_404s_is_recorded_against_its_model_in_mirror_mode(world, faulty_registry):
    missing = faulty_registry.file_path("acme/model-002", "1", "model.onnx")
    faulty_registry.faults.missing_files.add(missing)
    sync = run_sync(http_registry(world, faulty_registry.url, mode="mirror"))

    assert sync.job.status == JobStatus.SUCCEEDED
    assert (sync.created, sync.failed, sync.files_fetched) == (3, 1, 2)
    assert sync.errors[0]["model"] == "acme/model-002" and "NotFound" in sync.errors[0]["error"]
    assert not VersionFile.objects.filter(version__model__external_id="acme/model-002").exists()


def test_bytes_that_do_not_match_their_checksum_are_not_stored(world, faulty_registry):
    corrupt = faulty_registry.file_path("acme/model-001", "1", "model.onnx")
    faulty_registry.faults.corrupt_files.add(corrupt)
    sync = run_sync(http_registry(world, faulty_registry.url, mode="mirror"))

    assert sync.failed == 1 and "ChecksumMismatch" in sync.errors[0]["error"]
    assert not VersionFile.objects.filter(version__model__external_id="acme/model-001").exists()
    assert VersionFile.objects.filter(version__model__external_id="acme/model-003").exists()


def test_wrong_credentials_fail_with_a_message_about_the_credentials(world):
    with FaultyRegistry(token="right-token") as server:
        server.add_models(2)
        registry = http_registry(world, server.url, config={"token": "wrong-token"})
        sync = run_sync(registry)

    assert sync.job.status == JobStatus.FAILED
    assert "refused the credentials (HTTP 401)" in sync.job.error
    registry.refresh_from_db()
    assert "refused the credentials" in registry.connection_error


def test_the_right_token_is_sent_and_the_sync_succeeds(world):
    with FaultyRegistry(token="right-token") as server:
        server.add_models(2)
        sync = run_sync(http_registry(world, server.url, config={"token": "right-token"}))

    assert sync.job.status == JobStatus.SUCCEEDED and sync.created == 2
