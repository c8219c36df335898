"""The scheduler's tick starts a sync for each enabled registry whose time has come, once."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from apps.core.jobs import JobStatus
from apps.registries.models import Registry, RegistrySync, SyncTrigger
from apps.registries.services import start_due_syncs, start_sync
from tests.registries.support import make_registry

pytestmark = pytest.mark.django_db


def test_a_due_registry_is_started_once_and_rescheduled(world):
    registry = make_registry(
        world.org, world.user("owner"), backend="example-catalog", slug="hourly", config={}, sync_interval_minutes=60
    )
    assert registry.next_sync_at > timezone.now()
    assert start_due_syncs() == 0  # not due yet

    later = registry.next_sync_at + datetime.timedelta(seconds=1)
    assert start_due_syncs(now=later) == 1
    sync = RegistrySync.objects.get()
    assert sync.trigger == SyncTrigger.SCHEDULE and sync.job.status == JobStatus.QUEUED
    assert sync.job.queue == "sync"
    registry.refresh_from_db()
    assert registry.next_sync_at == later + datetime.timedelta(minutes=60)
    assert start_due_syncs(now=later) == 0


def test_disabled_manual_and_already_syncing_registries_are_left_alone(world):
    owner = world.user("owner")
    manual = make_registry(world.org, owner, backend="example-catalog", slug="manual", config={})
    disabled = make_registry(
        world.org, owner, backend="example-catalog", slug="off", config={}, sync_interval_minutes=10, enabled=False
    )
    busy = make_registry(world.org, owner, backend="example-catalog", slug="busy", config={}, sync_interval_minutes=10)
    start_sync(registry=busy)
    Registry.objects.update(next_sync_at=timezone.now() - datetime.timedelta(minutes=1))

    assert start_due_syncs() == 0
    assert manual.syncs.count() == 0 and disabled.syncs.count() == 0 and busy.syncs.count() == 1
