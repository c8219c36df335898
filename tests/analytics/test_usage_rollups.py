"""Rollups equal a recount of the raw events: per organization, per model version and per token, hourly and daily,
also after a missed hour and late events, and rolling up again changes nothing."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from apps.analytics import usage
from apps.analytics.models import PendingRollup, UsageEvent, UsageRollup
from apps.analytics.rollups import roll_up_pending
from tests.factories import OrganizationFactory, UserFactory
from tests.usage_support import drain_now

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 2, tzinfo=UTC)
AFTER = DAY + timedelta(days=3)


def _record_some(orgs, users, hours, count, seed):
    rng = random.Random(seed)
    for _ in range(count):
        hour = rng.choice(hours)
        usage.record(
            rng.choice(["download", "prediction", "job"]),
            organization_id=rng.choice(orgs).pk,
            user_id=rng.choice([None, *[u.pk for u in users]]),
            token_id=rng.choice([None, 1, 2]),
            token_kind=rng.choice(["", "ci", "service"]),
            model_id=rng.choice([None, 10, 20]),
            version_id=rng.choice([None, 100, 101]),
            items=rng.randint(1, 5),
            bytes=rng.randint(0, 1000),
            latency_ms=rng.choice([None, rng.uniform(1, 50)]),
            outcome=rng.choice(["ok", "ok", "error"]),
            compute_seconds=rng.choice([0.0, 0.5]),
            occurred_at=(DAY + timedelta(hours=hour, seconds=rng.randint(0, 3599))).timestamp(),
        )
    drain_now()


def _recount(granularity, scope):
    """The rollup's rows computed again in Python from every raw event."""
    rows = defaultdict(lambda: {"events": 0, "items": 0, "bytes": 0, "errors": 0, "users": set(), "lat": 0.0, "n": 0})
    for event in UsageEvent.objects.all():
        start = event.created_at.replace(minute=0, second=0, microsecond=0)
        if granularity == "day":
            start = start.replace(hour=0)
        if (scope == "model" and event.model_id is None) or (scope == "token" and event.token_id is None):
            continue
        key = (
            start, event.organization_id, event.kind, "" if scope == "model" else event.token_kind,
            event.model_id if scope == "model" else 0,
            (event.version_id or 0) if scope == "model" else 0,
            event.token_id if scope == "token" else 0,
        )  # fmt: skip
        row = rows[key]
        row["events"] += 1
        row["items"] += event.items
        row["bytes"] += event.bytes
        row["errors"] += event.outcome != "ok"
        if event.actor_id:
            row["users"].add(event.actor_id)
        if event.latency_ms is not None:
            row["lat"] += event.latency_ms
            row["n"] += 1
    return {
        key: (r["events"], r["items"], r["bytes"], r["errors"], len(r["users"]), round(r["lat"], 6), r["n"])
        for key, r in rows.items()
    }


def _rolled_up(granularity, scope):
    return {
        (r.bucket_start, r.organization_id, r.kind, r.token_kind, r.model_id, r.version_id, r.token_id): (
            r.events,
            r.items,
            r.bytes,
            r.errors,
            r.users,
            round(r.latency_sum_ms, 6),
            r.latency_count,
        )
        for r in UsageRollup.objects.filter(granularity=granularity, scope=scope)
    }


def _assert_rollups_equal_a_recount():
    for granularity in ("hour", "day"):
        for scope in ("org", "model", "token"):
            assert _rolled_up(granularity, scope) == _recount(granularity, scope), (granularity, scope)


@pytest.fixture
def people():
    return [OrganizationFactory(), OrganizationFactory()], [UserFactory(), UserFactory(), UserFactory()]


def test_hourly_and_daily_rollups_equal_a_recount_of_the_raw_events(people):
    orgs, users = people
    _record_some(orgs, users, hours=[0, 1, 5, 23], count=300, seed=1)
    done = roll_up_pending(now=AFTER)
    assert (done["hours"], done["days"]) == (4, 1)
    assert not PendingRollup.objects.exists()
    _assert_rollups_equal_a_recount()
    assert sum(UsageRollup.objects.filter(granularity="day", scope="org").values_list("events", flat=True)) == 300


def test_a_missed_hour_and_late_events_are_rolled_up_when_the_job_runs_again(people):
    orgs, users = people
    _record_some(orgs, users, hours=[0, 1], count=100, seed=2)
    roll_up_pending(now=AFTER)
    # The job misses hour 2 (it was down), and events of hour 0 arrive late (the drain was behind).
    _record_some(orgs, users, hours=[2], count=50, seed=3)
    _record_some(orgs, users, hours=[0], count=20, seed=4)
    assert set(PendingRollup.objects.filter(granularity="hour").values_list("bucket_start", flat=True)) == {
        DAY,
        DAY + timedelta(hours=2),
    }
    done = roll_up_pending(now=AFTER)
    assert (done["hours"], done["days"]) == (2, 1)
    _assert_rollups_equal_a_recount()


def test_rolling_up_again_changes_nothing(people):
    orgs, users = people
    _record_some(orgs, users, hours=[3], count=60, seed=5)
    roll_up_pending(now=AFTER)
    before = _rolled_up("hour", "org"), _rolled_up("day", "model")
    from apps.analytics.rollups import mark_range

    mark_range(DAY, DAY + timedelta(days=1))
    roll_up_pending(now=AFTER)
    assert (_rolled_up("hour", "org"), _rolled_up("day", "model")) == before


def test_a_day_still_receiving_events_is_rolled_up_again_only_after_the_refresh_delay(people, settings):
    settings.USAGE_DAY_ROLLUP_REFRESH_SECONDS = 600
    orgs, _users = people
    now = datetime.now(UTC)
    usage.record("download", organization_id=orgs[0].pk)
    drain_now()
    done = roll_up_pending(now=now)
    assert (done["hours"], done["days"]) == (1, 0)
    done = roll_up_pending(now=now + timedelta(seconds=601))
    assert done["days"] == 1
    assert UsageRollup.objects.get(granularity="day", scope="org").events == 1


def test_buckets_older_than_the_raw_retention_are_not_rolled_up_again(people, settings):
    settings.USAGE_RAW_RETENTION_DAYS = 1
    orgs, users = people
    _record_some(orgs, users, hours=[1], count=5, seed=6)
    roll_up_pending(now=DAY + timedelta(days=10))
    assert not UsageRollup.objects.exists()
    assert not PendingRollup.objects.exists()


def test_the_rollup_command_recounts_a_range_of_days(people, settings):
    from django.core.management import call_command

    settings.USAGE_RAW_RETENTION_DAYS = 0  # the test's day is long past the default retention

    orgs, users = people
    _record_some(orgs, users, hours=[4], count=10, seed=7)
    roll_up_pending(now=AFTER)
    UsageRollup.objects.all().delete()  # lost rollups: recount the day from the raw events
    call_command("rollup_usage", "--since", "2026-03-02", "--until", "2026-03-02")
    _assert_rollups_equal_a_recount()
    with pytest.raises(Exception, match="YYYY-MM-DD"):
        call_command("rollup_usage", "--since", "March")
