"""The scheduler's tick picks each enabled registry whose time has come, once, moves its next time on and queues
its start; the start task writes the sync's job."""

from __future__ import annotations

import datetime
import json

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from apps.core.jobs import JobStatus
from apps.registries.models import Registry, RegistrySync, SyncTrigger
from apps.registries.services import start_due_syncs, start_scheduled_sync_of, start_sync
from tests.jobs_support import purge_broker
from tests.registries.support import make_registry

pytestmark = pytest.mark.django_db


def hourly(world, slug="hourly", **fields):
    return make_registry(
        world.org,
        world.user("owner"),
        backend="example-catalog",
        slug=slug,
        config={},
        sync_interval_minutes=60,
        **fields,
    )


def queued_starts() -> list[str]:
    """The start tasks waiting in the real broker's ``default`` queue (Redis), by their arguments."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    messages = [json.loads(raw) for raw in client.lrange("default", 0, -1)]
    return [m["headers"]["argsrepr"] for m in messages if m["headers"]["task"] == "registries.start_scheduled_syncs"]


@pytest.fixture
def broker():
    if not settings.REDIS_URL:
        pytest.skip("needs the Redis broker, as in CI")
    purge_broker()
    yield
    purge_broker()


def test_a_due_registry_is_queued_once_rescheduled_and_its_start_writes_a_sync_job(
    world, django_capture_on_commit_callbacks, broker
):
    registry = hourly(world)
    assert registry.next_sync_at > timezone.now()
    assert start_due_syncs() == []  # not due yet

    later = registry.next_sync_at + datetime.timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert start_due_syncs(now=later) == [registry.pk]
    assert queued_starts() == [f"([{registry.pk}],)"]  # the start is queued once the tick commits
    registry.refresh_from_db()
    assert registry.next_sync_at == later + datetime.timedelta(minutes=60)
    assert start_due_syncs(now=later) == []

    sync = start_scheduled_sync_of(registry.pk)
    assert sync.trigger == SyncTrigger.SCHEDULE and sync.job.status == JobStatus.QUEUED
    assert sync.job.queue == "sync"
    assert start_scheduled_sync_of(registry.pk) is None  # already syncing: nothing twice
    assert RegistrySync.objects.count() == 1


def test_disabled_manual_and_already_syncing_registries_are_left_alone(world):
    owner = world.user("owner")
    manual = make_registry(world.org, owner, backend="example-catalog", slug="manual", config={})
    disabled = hourly(world, slug="off", enabled=False)
    busy = hourly(world, slug="busy")
    start_sync(registry=busy)
    Registry.objects.update(next_sync_at=timezone.now() - datetime.timedelta(minutes=1))

    assert start_due_syncs() == []
    assert manual.syncs.count() == 0 and disabled.syncs.count() == 0 and busy.syncs.count() == 1
    assert start_scheduled_sync_of(disabled.pk) is None


def test_a_tick_queues_at_most_its_limit_the_longest_overdue_first(world):
    registries = [hourly(world, slug=f"r{number}") for number in range(5)]
    now = timezone.now()
    for offset, registry in enumerate(registries):
        Registry.objects.filter(pk=registry.pk).update(next_sync_at=now - datetime.timedelta(minutes=10 - offset))

    assert start_due_syncs(now=now, limit=3) == [registry.pk for registry in registries[:3]]
    assert start_due_syncs(now=now, limit=3) == [registry.pk for registry in registries[3:]]
