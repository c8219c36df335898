"""A sync's page tells one story: the totals of the whole run (read from its row, never the last page's progress
line), when it started, how long it ran, who or what started it; and while it runs its live part answers again for
htmx to poll, with the counts so far."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.jobs import Job, JobStatus
from apps.registries import services
from tests.registries.support import ScriptedBackend, make_registry, run_sync, scripted_model

pytestmark = pytest.mark.django_db


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def admin(world) -> Client:
    client = Client()
    client.force_login(world.user("admin"))
    return client


def sync_url(sync, name="org-registry-sync-detail") -> str:
    return reverse(name, kwargs={"org_slug": "acme", "registry_slug": "scripted", "sync_id": sync.pk})


def test_a_finished_sync_shows_the_whole_runs_totals_start_duration_and_who_started_it(admin, world):
    ScriptedBackend.CATALOGS["scripted"] = [scripted_model(f"org/model-{n}") for n in range(5)]  # 3 pages of 2
    registry = make_registry(world.org, world.user("owner"))
    sync = run_sync(registry, actor=world.user("admin"))
    assert sync.job.progress_message.startswith("5 models read in 3 pages")
    page = text_of(admin.get(sync_url(sync)).content.decode())
    assert "5 models read in 3 pages: 5 new, 0 updated, 0 unchanged." in page
    assert "Read 5 models in 3 pages" in page
    assert "2 models read" not in page and "4 models read" not in page
    assert "Started by admin-user" in page
    assert "took" in page and "Duration" in page and "Started " + sync.job.started_at.strftime("%Y-%m-%d") in page


def test_a_scheduled_sync_says_the_schedule_started_it(admin, world):
    ScriptedBackend.CATALOGS["scripted"] = [scripted_model("org/one")]
    registry = make_registry(world.org, world.user("owner"))
    sync = run_sync(registry)
    type(sync).objects.filter(pk=sync.pk).update(trigger="schedule")
    assert "Started by the schedule" in text_of(admin.get(sync_url(sync)).content.decode())


def test_while_a_sync_runs_its_live_part_is_polled_with_the_counts_so_far(admin, world):
    ScriptedBackend.CATALOGS["scripted"] = [scripted_model("org/one")]
    registry = make_registry(world.org, world.user("owner"))
    sync = services.start_sync(registry=registry, actor=world.user("admin"))
    Job.objects.filter(pk=sync.job_id).update(status=JobStatus.RUNNING, attempts=1, progress=0.4)
    type(sync).objects.filter(pk=sync.pk).update(seen=40, pages=2, created=38, failed=2)
    live = admin.get(sync_url(sync, "org-registry-sync-live"))
    assert live.status_code == 200
    html = live.content.decode()
    assert f'hx-get="{sync_url(sync, "org-registry-sync-live")}"' in html and 'hx-trigger="every 1s"' in html
    assert "40 models read in 2 pages so far: 38 new" in text_of(html) and "40 %" in html
    assert "<html" not in html
