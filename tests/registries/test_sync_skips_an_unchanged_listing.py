"""A listing whose snapshot (the index file's Last-Modified or ETag) has not changed is not read again: the
second sync marks every model as seen in one statement. A new file, or new registry settings, read it again."""

from __future__ import annotations

import time

import pytest

from apps.core.jobs import JobStatus
from apps.marketplace.models import Model
from apps.registries.services import update_registry
from tests.peers.static_server import static_server  # noqa: F401 (fixture)
from tests.registries.support import make_registry, run_sync

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def index(static_server, settings):  # noqa: F811
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    site = static_server.site("unchanged")
    entries = [site.model_entry(f"acme/model-{n}") for n in range(4)]
    return site, entries, site.write_jsonl(entries)


def test_an_unchanged_index_is_not_read_again_and_nothing_is_removed(world, index):
    _site, _entries, url = index
    registry = make_registry(world.org, world.user("owner"), backend="http-index", slug="idx", config={"url": url})
    first = run_sync(registry)
    second = run_sync(registry)

    assert first.created == 4 and not first.unchanged_listing and first.snapshot.count("last-modified:") == 1
    assert second.job.status == JobStatus.SUCCEEDED
    assert second.unchanged_listing and (second.seen, second.unchanged, second.removed) == (4, 4, 0)
    assert second.pages == 0  # not a page was read
    assert Model.objects.filter(source_registry="idx").count() == 4


def test_a_rewritten_index_or_new_settings_are_read_again(world, index):
    site, entries, url = index
    registry = make_registry(world.org, world.user("owner"), backend="http-index", slug="idx", config={"url": url})
    run_sync(registry)
    time.sleep(1.1)  # Last-Modified has a resolution of one second
    site.write_jsonl(entries[:3])
    rewritten = run_sync(registry)
    assert not rewritten.unchanged_listing and rewritten.removed == 1

    update_registry(registry=registry, actor=world.user("owner"), exclude_patterns=["acme/model-0"])
    registry.refresh_from_db()
    refiltered = run_sync(registry)
    assert not refiltered.unchanged_listing and refiltered.skipped == 1 and refiltered.removed == 1
