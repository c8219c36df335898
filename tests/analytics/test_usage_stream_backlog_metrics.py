"""/metrics says how far the usage drain is behind: the events waiting in the stream, those a drain read and did not
acknowledge (it died mid-batch), the age of the oldest one and the stream's cap, read from the real Redis at scrape
time; the alerts GpuxUsageDrainBehind and GpuxUsageStreamNearCap (deploy/monitoring/alerts.yml) watch them."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from apps.analytics import drain, usage
from tests.metrics_support import scrape_web
from tests.usage_support import drain_now

pytestmark = pytest.mark.django_db(transaction=True)


def backlog() -> dict[str, float]:
    scraped = scrape_web(Client())
    return {
        name: scraped.value(f"gpux_usage_stream_{name}")
        for name in ("entries", "pending_entries", "oldest_entry_age_seconds", "max_entries")
    }


def test_the_backlog_counts_what_waits_what_a_dead_drain_read_and_nothing_once_drained(world, settings):
    settings.USAGE_STREAM_MAX_LENGTH = 1_500_000
    for _ in range(4):
        usage.record("download", organization_id=world.org.pk)
    usage.flush()
    assert backlog() == {"entries": 4, "pending_entries": 0, "oldest_entry_age_seconds": pytest.approx(0, abs=5),
                         "max_entries": 1_500_000}  # fmt: skip

    client = usage.client()
    drain._ensure_group(client)
    client.xreadgroup(drain.GROUP, drain.CONSUMER, {usage.STREAM: ">"}, count=3)  # read, then "killed"
    assert (backlog()["entries"], backlog()["pending_entries"]) == (4, 3)

    assert drain_now().inserted == 4
    assert backlog() == {"entries": 0, "pending_entries": 0, "oldest_entry_age_seconds": 0, "max_entries": 1_500_000}


def test_the_oldest_waiting_event_gives_the_age_the_alert_reads(world):
    client = usage.client()
    seconds, micros = client.time()
    eleven_minutes_ago = int(seconds * 1000 + micros // 1000) - 660_000
    event = usage.event("download", organization_id=world.org.pk, occurred_at=time.time() - 660)
    client.xadd(usage.STREAM, {"e": json.dumps(event)}, id=f"{eleven_minutes_ago}-0")
    usage.record("download", organization_id=world.org.pk)
    usage.flush()
    found = backlog()
    assert found["entries"] == 2
    assert 660 <= found["oldest_entry_age_seconds"] < 670


def test_without_redis_answering_the_scrape_still_answers_without_the_backlog(settings):
    settings.USAGE_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    usage._clients.clear()
    try:
        scraped = scrape_web(Client())
    finally:
        usage._clients.clear()
    assert scraped.samples  # the other families
    assert not scraped.find("gpux_usage_stream_entries")
