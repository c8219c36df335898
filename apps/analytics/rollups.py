"""Hourly and daily rollups of usage events.

A bucket (an hour or a day, UTC) is rolled up by replacing all its rollup rows with a recount of its raw events, in
one transaction: running it twice gives the same rows, so the periodic job is idempotent. Which buckets to roll up
comes from ``PendingRollup`` markers that every insert of events writes in its own transaction: the job catches up
after any downtime (a missed hour is still marked) and an event drained late is counted in its own hour and day.

Three scopes per bucket, organization and kind: the organization as a whole and each token, by token kind; each
model version, all token kinds together (``RollupScope``). ``users`` counts distinct signed-in users within a row;
with them each bucket gets its ``UsageActiveUser`` rows (distinct users per organization, kind and token kind, and per
model and kind), from which distinct users over a whole period are counted.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.analytics.drain import day_of, hour_of
from apps.analytics.models import (
    Granularity,
    PendingRollup,
    RollupScope,
    UsageActiveUser,
    UsageEvent,
    UsageRollup,
)

logger = logging.getLogger(__name__)

LENGTH = {Granularity.HOUR: timedelta(hours=1), Granularity.DAY: timedelta(days=1)}

_SCOPE_COLUMNS = {
    RollupScope.ORGANIZATION: ("0", "0", "0", ""),
    RollupScope.MODEL: ("model_id", "COALESCE(version_id, 0)", "0", "AND model_id IS NOT NULL"),
    RollupScope.TOKEN: ("0", "0", "token_id", "AND token_id IS NOT NULL"),
}
# Model rows are not split by token kind (it would multiply the largest scope's rows for a split the organization
# and token scopes already give): their token_kind is ''.
_SPLIT_BY_TOKEN_KIND = {RollupScope.ORGANIZATION: True, RollupScope.MODEL: False, RollupScope.TOKEN: True}


def _insert_sql(scope: str) -> str:
    model_column, version_column, token_column, condition = _SCOPE_COLUMNS[scope]
    p95 = "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)" if connection.vendor == "postgresql" else "NULL"
    rollups, events = UsageRollup._meta.db_table, UsageEvent._meta.db_table
    dimensions = [column for column in (model_column, version_column, token_column) if column != "0"]
    token_kind = "token_kind" if _SPLIT_BY_TOKEN_KIND[scope] else "''"
    group_by = ", ".join(
        ["organization_id", "kind", *(["token_kind"] if _SPLIT_BY_TOKEN_KIND[scope] else []), *dimensions]
    )
    # Names from the models and this module; values as parameters.
    return f"""
        INSERT INTO {rollups} (
            granularity, bucket_start, organization_id, scope, kind, token_kind, model_id, version_id, token_id,
            events, items, bytes, errors, users, compute_seconds, latency_sum_ms, latency_count, latency_max_ms,
            latency_p95_ms
        )
        SELECT %s, %s, organization_id, %s, kind, {token_kind}, {model_column}, {version_column}, {token_column},
            COUNT(*), COALESCE(SUM(items), 0), COALESCE(SUM(bytes), 0),
            SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END), COUNT(DISTINCT actor_id),
            COALESCE(SUM(compute_seconds), 0), COALESCE(SUM(latency_ms), 0), COUNT(latency_ms), MAX(latency_ms), {p95}
        FROM {events}
        WHERE created_at >= %s AND created_at < %s {condition}
        GROUP BY {group_by}
    """  # noqa: S608


def _active_users_sql(scope: str) -> str:
    """The bucket's distinct users: per organization, kind and token kind (``model_id`` 0), or per model and kind."""
    users, events = UsageActiveUser._meta.db_table, UsageEvent._meta.db_table
    if scope == RollupScope.MODEL:
        columns, condition = "'', model_id", "AND model_id IS NOT NULL"
    else:
        columns, condition = "token_kind, 0", ""
    return f"""
        INSERT INTO {users} (granularity, bucket_start, organization_id, kind, token_kind, model_id, user_id)
        SELECT DISTINCT %s, %s, organization_id, kind, {columns}, actor_id
        FROM {events}
        WHERE created_at >= %s AND created_at < %s AND actor_id IS NOT NULL {condition}
    """  # noqa: S608 - table names from the models


def roll_up_bucket(granularity: str, bucket_start: datetime) -> int:
    """Replace the rollup rows (and active-user rows) of one bucket with a recount of its raw events; returns the
    rollup rows written."""
    end = bucket_start + LENGTH[Granularity(granularity)]
    # The raw statements get the times as the ORM writes and compares them: on SQLite (make run) a datetime is text,
    # and the driver's own spelling ("...+00:00") is not the ORM's, so a bucket rolled up again kept the rows the
    # ORM's delete did not match and its insert failed on the unique constraint. PostgreSQL gets them unchanged.
    start_value, end_value = (connection.ops.adapt_datetimefield_value(value) for value in (bucket_start, end))
    written = 0
    with transaction.atomic():
        UsageRollup.objects.filter(granularity=granularity, bucket_start=bucket_start).delete()
        UsageActiveUser.objects.filter(granularity=granularity, bucket_start=bucket_start).delete()
        with connection.cursor() as cursor:
            for scope in RollupScope:
                cursor.execute(_insert_sql(scope), [granularity, start_value, scope.value, start_value, end_value])
                written += max(cursor.rowcount, 0)
            for scope in (RollupScope.ORGANIZATION, RollupScope.MODEL):
                cursor.execute(_active_users_sql(scope), [granularity, start_value, start_value, end_value])
    return written


def _due_days_condition(now: datetime) -> Any:
    from django.db.models import Q

    refresh = timedelta(seconds=int(getattr(settings, "USAGE_DAY_ROLLUP_REFRESH_SECONDS", 600)))
    return Q(bucket_start__lte=now - timedelta(days=1)) | Q(first_marked_at__lte=now - refresh)


def _take_one(granularity: str, now: datetime) -> PendingRollup | None:
    """The oldest due marker of ``granularity`` nobody else is rolling up, locked for this transaction."""
    pending = PendingRollup.objects.filter(granularity=granularity)
    if granularity == Granularity.DAY:
        pending = pending.filter(_due_days_condition(now))
    return pending.order_by("bucket_start").select_for_update(skip_locked=True).first()


def roll_up_pending(*, now: datetime | None = None, max_seconds: float | None = None) -> dict[str, int]:
    """Roll up every marked hour, and every marked day that is over or waited ``USAGE_DAY_ROLLUP_REFRESH_SECONDS``.
    Buckets older than the raw events' retention are not rolled up again (their events are gone)."""
    now = now or timezone.now()
    max_seconds = max_seconds if max_seconds is not None else 50.0
    deadline = time.monotonic() + max_seconds
    retention_days = int(getattr(settings, "USAGE_RAW_RETENTION_DAYS", 90))
    cutoff = now - timedelta(days=retention_days) if retention_days > 0 else None
    done = {"hours": 0, "days": 0, "rows": 0}
    for granularity, counter in ((Granularity.HOUR, "hours"), (Granularity.DAY, "days")):
        while time.monotonic() < deadline:
            with transaction.atomic():
                marker = _take_one(granularity, now)
                if marker is None:
                    break
                if cutoff is None or marker.bucket_start >= cutoff - LENGTH[granularity]:
                    done["rows"] += roll_up_bucket(granularity, marker.bucket_start)
                    done[counter] += 1
                marker.delete()
    return done


def mark_range(start: datetime, end: datetime) -> int:
    """Mark every hour and day between ``start`` and ``end`` for the rollup (a rebuild: ``manage.py rollup_usage``)."""
    from apps.analytics.drain import mark_pending

    moments = []
    hour = hour_of(start)
    while hour < end:
        moments.append(hour)
        hour += timedelta(hours=1)
    with transaction.atomic():
        mark_pending(moments)
    return len(moments)


__all__ = ["day_of", "mark_range", "roll_up_bucket", "roll_up_pending"]
