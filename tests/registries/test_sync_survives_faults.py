"""A registry that fails, slows down or lies: the sync records it, keeps what it had and finishes.

The faults come from a scripted test plugin (tests/registries/support.py) so each is exact; the same faults
over real HTTP, through the HTTP-index backend, are in test_sync_faults_over_http.py.
"""

from __future__ import annotations

import pytest

from apps.core.jobs import JobStatus
from apps.marketplace.models import Model, VersionFile
from apps.registries.models import RegistryModel, RemoteFile
from apps.registries.sdk import InvalidResponse, RateLimited, Unauthorized, Unavailable
from apps.registries.sync import RetryPolicy
from tests.registries.support import ScriptedBackend, make_registry, run_sync, scripted_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    models = [scripted_model(f"org/m{n}") for n in range(6)]
    ScriptedBackend.CATALOGS["scripted"] = models
    return models


def test_rate_limited_pages_are_retried_after_the_registry_s_retry_after(world, catalog, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(RetryPolicy, "from_settings", classmethod(lambda cls: cls(attempts=3, sleep=waits.append)))
    ScriptedBackend.FAULTS["scripted"] = {1: [RateLimited(retry_after=1.5), RateLimited(retry_after=0.5)]}
    sync = run_sync(make_registry(world.org, world.user("owner")))

    assert sync.job.status == JobStatus.SUCCEEDED
    assert waits == [1.5, 0.5]
    assert sync.retries == 2 and sync.created == 6
    # Retries resume at the cursor of the last page written: page 0 is not read (or counted) twice.
    assert [cursor for _, cursor in ScriptedBackend.CALLS] == [None, "2", "2"]


def test_a_registry_that_stays_down_fails_the_run_and_keeps_what_was_synced(world, catalog):
    registry = make_registry(world.org, world.user("owner"))
    run_sync(registry)
    catalog.pop(0)  # would be "removed" if the listing were complete
    ScriptedBackend.FAULTS["scripted"] = {2: [Unavailable("HTTP 500")] * 10}
    sync = run_sync(registry)

    assert sync.job.status == JobStatus.FAILED
    assert "HTTP 500" in sync.job.error and "nothing was marked as removed" in sync.job.error
    assert not sync.complete and sync.removed == 0
    assert Model.objects.filter(source_registry="scripted").count() == 6
    assert not RegistryModel.objects.filter(removed_upstream_at__isnull=False).exists()
    registry.refresh_from_db()
    assert "HTTP 500" in registry.connection_error


def test_a_retry_after_longer_than_the_longest_wait_gives_up_and_says_so(world, catalog, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(
        RetryPolicy, "from_settings", classmethod(lambda cls: cls(attempts=3, max_wait=60, sleep=waits.append))
    )
    ScriptedBackend.FAULTS["scripted"] = {0: [RateLimited(retry_after=3600)]}
    sync = run_sync(make_registry(world.org, world.user("owner")))

    assert waits == []
    assert sync.job.status == JobStatus.FAILED and "asked to wait 3600 s" in sync.job.error


def test_wrong_credentials_fail_at_once_with_a_clear_message(world, catalog, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(RetryPolicy, "from_settings", classmethod(lambda cls: cls(sleep=waits.append)))
    ScriptedBackend.FAULTS["scripted"] = {0: [Unauthorized("registry.example refused the credentials (HTTP 401).")]}
    registry = make_registry(world.org, world.user("owner"))
    sync = run_sync(registry)

    assert waits == []  # not retryable
    assert "Unauthorized: registry.example refused the credentials (HTTP 401)." in sync.job.error
    registry.refresh_from_db()
    assert "refused the credentials" in registry.connection_error


def test_malformed_answers_are_recorded_not_retried_forever(world, catalog):
    ScriptedBackend.FAULTS["scripted"] = {1: [InvalidResponse("malformed JSON: Expecting value: line 1")]}
    sync = run_sync(make_registry(world.org, world.user("owner")))

    assert sync.job.status == JobStatus.FAILED and "malformed JSON" in sync.job.error
    assert sync.created == 2  # the first page stays


def test_a_listing_that_pages_forever_is_stopped(world, settings):
    settings.REGISTRY_MAX_PAGES = 5
    ScriptedBackend.CATALOGS["scripted"] = [scripted_model(f"org/m{n:03}") for n in range(40)]
    sync = run_sync(make_registry(world.org, world.user("owner")))

    assert sync.job.status == JobStatus.FAILED
    assert "more than 5 pages" in sync.job.error and sync.pages == 5


@pytest.mark.parametrize("kind", ["value", "key", "system-exit"])
def test_a_plugin_that_raises_anything_fails_its_run_not_the_worker(world, kind):
    registry = make_registry(
        world.org, world.user("owner"), backend="test-exploding", slug="boom", config={"raise": kind}
    )
    sync = run_sync(registry)

    assert sync.job.status == JobStatus.FAILED
    assert "a bug in the backend" in sync.job.error
    assert sync.created == 1  # the page it served before failing is kept


def test_a_plugin_that_cannot_start_fails_its_run_with_the_reason(world):
    registry = make_registry(
        world.org, world.user("owner"), backend="test-exploding", slug="boom", config={"raise": "constructor"}
    )
    sync = run_sync(registry)

    assert sync.job.status == JobStatus.FAILED and "failed to start" in sync.job.error


def test_bad_models_are_recorded_one_by_one_and_the_rest_synced(world):
    good = scripted_model("org/good")
    bad_path = scripted_model("org/bad-path")
    bad_path = bad_path.__class__(
        **{
            **bad_path.__dict__,
            "versions": (
                bad_path.versions[0].__class__(
                    label="1", files=(bad_path.versions[0].files[0].__class__(path="../etc/passwd"),)
                ),
            ),
        }
    )
    too_long = scripted_model("org/" + "x" * 400)
    ScriptedBackend.CATALOGS["scripted"] = [good, bad_path, too_long]
    sync = run_sync(make_registry(world.org, world.user("owner"), config={"catalog": "scripted", "page_size": 10}))

    assert sync.job.status == JobStatus.SUCCEEDED
    assert (sync.created, sync.failed) == (1, 2)
    reasons = {error["model"][:12]: error["error"] for error in sync.errors}
    assert "may not contain" in reasons["org/bad-path"]
    assert "at most 300" in reasons["org/xxxxxxxx"]


def test_mirror_mode_copies_files_and_records_a_file_that_fails(world, catalog):
    ScriptedBackend.FAULTS["scripted"] = {-1: ["org/m3"]}
    registry = make_registry(world.org, world.user("owner"), mode="mirror")
    sync = run_sync(registry)

    assert sync.job.status == JobStatus.SUCCEEDED
    assert sync.files_fetched == 5 and sync.failed == 1
    assert VersionFile.objects.filter(version__model__source_registry="scripted").count() == 5
    assert not VersionFile.objects.filter(version__model__external_id="org/m3").exists()
    assert "files are down" in RemoteFile.objects.get(version__model__external_id="org/m3").fetch_error
    # The failed model is tried again by the next sync (its fingerprint was cleared), and then succeeds.
    ScriptedBackend.FAULTS["scripted"] = {}
    again = run_sync(registry)
    assert again.updated == 1 and again.files_fetched == 1
    assert VersionFile.objects.filter(version__model__external_id="org/m3").exists()


def test_a_model_the_database_refuses_fails_alone_and_the_page_is_written_one_by_one(world):
    # PostgreSQL refuses NUL characters in text: the page's bulk insert fails, then the page is written model by
    # model so that only that model fails.
    poisoned = scripted_model("org/poisoned", summary="before\x00after")
    ScriptedBackend.CATALOGS["scripted"] = [scripted_model("org/a"), poisoned, scripted_model("org/c")]
    sync = run_sync(make_registry(world.org, world.user("owner"), config={"catalog": "scripted", "page_size": 10}))

    assert sync.job.status == JobStatus.SUCCEEDED
    assert (sync.created, sync.failed) == (2, 1)
    assert sync.errors[0]["model"] == "org/poisoned" and "The catalog refused it" in sync.errors[0]["error"]
    assert set(Model.objects.filter(source_registry="scripted").values_list("external_id", flat=True)) == {
        "org/a",
        "org/c",
    }
