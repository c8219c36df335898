"""The drain: copies the usage stream (``apps.analytics.usage``) into ``UsageEvent`` in bulk.

It reads the stream as the consumer ``drain`` of the group ``usage-drain``, inserts a batch in one transaction
(a multi-row ``INSERT ... ON CONFLICT (event_id) DO NOTHING``, with the buckets it touched marked for the rollup),
and acknowledges and deletes the entries only after the commit. Killed between reading and acknowledging, the entries
stay pending for the consumer: the next run reads those first and inserts what was not there already, so nothing is
lost and nothing counted twice. One drain runs at a time (a lock in Redis, renewed after each batch, that lapses
``USAGE_DRAIN_LOCK_SECONDS`` after its holder dies).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.analytics import usage
from apps.analytics.models import Granularity, PendingRollup, UsageEvent

logger = logging.getLogger(__name__)

GROUP = "usage-drain"
CONSUMER = "drain"
LOCK = "gpux:usage:drain-lock"
# Entries that could not be stored, with why (fields e, entry, reason): for an operator to read, never retried.
REJECTED = "gpux:usage:rejected"


@dataclass
class DrainReport:
    inserted: int = 0
    duplicates: int = 0
    dropped: int = 0
    rejected: int = 0
    batches: int = 0
    busy: bool = False
    seconds: float = 0.0


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def mark_pending(moments: Iterable[datetime]) -> None:
    """Mark the hours and days of ``moments`` for the rollup. The upsert locks an existing marker row, so a rollup
    that is taking it waits for this transaction (or this one for it) and no change goes unnoticed."""
    hours = sorted({hour_of(moment) for moment in moments})
    if not hours:
        return
    days = sorted({day_of(hour) for hour in hours})
    now = timezone.now()
    rows = [
        PendingRollup(granularity=Granularity.HOUR, bucket_start=h, first_marked_at=now, last_marked_at=now)
        for h in hours
    ]
    rows += [
        PendingRollup(granularity=Granularity.DAY, bucket_start=d, first_marked_at=now, last_marked_at=now)
        for d in days
    ]
    PendingRollup.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["granularity", "bucket_start"], update_fields=["last_marked_at"]
    )


# The columns the drain writes, in COPY order (``id`` comes from the table's sequence).
COLUMNS = (
    "event_id", "organization_id", "actor_id", "kind", "token_id", "token_kind", "model_id", "version_id",
    "deployment_id", "subject_type", "subject_id", "subject_label", "path", "blob_sha256", "items", "bytes",
    "latency_ms", "compute_seconds", "device", "outcome", "status_code", "metadata", "created_at",
)  # fmt: skip
STAGING = "gpux_usage_staging_v2"  # v2: with ``staging_position`` (the stream's order, kept by the insert)
_INT8 = 2**63 - 1
_INT4 = 2**31 - 1


class Rejected(ValueError):
    """An event the database cannot hold as it is (malformed, out of range): set aside, never retried."""


def _integer(value: Any, name: str, *, low: int = -_INT8, high: int = _INT8) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise Rejected(f"{name} is not a whole number: {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise Rejected(f"{name} out of range: {number}")
    return number


def _optional_integer(event: dict[str, Any], name: str) -> int | None:
    value = event.get(name)
    return None if value is None or value == "" else _integer(value, name)


def _number(value: Any, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise Rejected(f"{name} is not finite: {value!r}")
    return number


def _text(value: Any, length: int) -> str:
    # PostgreSQL text cannot hold NUL: a stray one is removed rather than the event lost.
    return str(value or "").replace("\x00", "")[:length]


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _json(value: dict[str, Any]) -> str:
    text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    # jsonb cannot hold NUL either (JSON's \u0000): removed from keys and strings as from the text columns.
    return json.dumps(_without_nul(value), allow_nan=False, separators=(",", ":")) if "\\u0000" in text else text


def _values(event: Any) -> tuple[Any, ...]:
    """One event of the stream as the table's row (``COLUMNS``), checked against what the columns hold; raises
    ``Rejected`` (or KeyError, TypeError, ValueError, OverflowError) for an event that cannot be stored."""
    if not isinstance(event, dict):
        raise Rejected(f"not an object: {type(event).__name__}")
    metadata = event.get("metadata") or {}
    metadata = metadata if isinstance(metadata, dict) else {"value": metadata}
    latency = event.get("latency_ms")
    return (
        uuid.UUID(str(event["id"])),
        _integer(event["org"], "org", low=1),
        _optional_integer(event, "user_id"),
        _text(event["kind"], 40),
        _optional_integer(event, "token_id"),
        _text(event.get("token_kind"), 10),
        _optional_integer(event, "model_id"),
        _optional_integer(event, "version_id"),
        _optional_integer(event, "deployment_id"),
        _text(event.get("subject_type"), 100),
        _text(event.get("subject_id"), 64),
        _text(event.get("subject_label"), 300),
        _text(event.get("path"), 500),
        _text(event.get("blob_sha256"), 64),
        _integer(event.get("items", 1), "items", low=-_INT4 - 1, high=_INT4),
        _integer(event.get("bytes", 0), "bytes"),
        None if latency is None else _number(latency, "latency_ms"),
        _number(event.get("compute_seconds") or 0.0, "compute_seconds"),
        _text(event.get("device"), 20),
        _text(event.get("outcome") or "ok", 10),
        _integer(event.get("status_code", 200), "status_code", low=0, high=32767),
        _json(metadata),
        datetime.fromtimestamp(_number(event["t"], "t"), UTC),
    )


@dataclass
class Stored:
    """What ``store_events`` did: events inserted, already there (by id), dropped (their organization is gone), and
    rejected (index in the list given, and why): malformed or out of range, never stored."""

    inserted: int = 0
    duplicates: int = 0
    dropped: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _staging_sql() -> str:
    from django.db import connection

    fields = {f.column: f for f in UsageEvent._meta.concrete_fields}
    columns = ", ".join(f"{name} {fields[name].db_type(connection)}" for name in COLUMNS)
    return f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} ({columns}, staging_position bigint)"


def _copy_rows(rows: list[tuple[Any, ...]]) -> tuple[list[datetime], int, int]:
    """COPY ``rows`` into the session's staging table, then insert them into the events' table in one statement:
    ``ON CONFLICT (event_id) DO NOTHING`` skips those already stored (an entry read again after a drain died);
    events of organizations that no longer exist are left out; users that no longer exist become anonymous. Rows
    are inserted in the stream's order (``staging_position``): ids follow the order events were recorded in.
    Returns (the hours of the inserted events, one per event; inserted; dropped)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.organizations.models import Organization

    if connection.vendor != "postgresql":
        return _insert_rows(rows)
    events, organizations = UsageEvent._meta.db_table, Organization._meta.db_table
    users = get_user_model()._meta.db_table
    names = ", ".join(COLUMNS)
    chosen = ", ".join("u.id" if name == "actor_id" else f"s.{name}" for name in COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(_staging_sql())
        with cursor.copy(f"COPY {STAGING} ({names}, staging_position) FROM STDIN") as copy:
            for position, row in enumerate(rows):
                copy.write_row((*row, position))
        cursor.execute(
            f"""
            WITH inserted AS (
                INSERT INTO {events} ({names})
                SELECT {chosen} FROM {STAGING} s
                JOIN {organizations} o ON o.id = s.organization_id
                LEFT JOIN {users} u ON u.id = s.actor_id
                ORDER BY s.staging_position
                ON CONFLICT (event_id) DO NOTHING
                RETURNING created_at
            )
            SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC'), COUNT(*) FROM inserted GROUP BY 1
            """  # noqa: S608 - names from the models and this module
        )
        hours = cursor.fetchall()
        cursor.execute(
            f"SELECT COUNT(*) FROM {STAGING} s WHERE NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {organizations} o WHERE o.id = s.organization_id)"
        )
        dropped = cursor.fetchone()[0]
        cursor.execute(f"DELETE FROM {STAGING}")  # noqa: S608
    return [hour.replace(tzinfo=UTC) for hour, _count in hours], sum(count for _hour, count in hours), dropped


def _insert_rows(rows: list[tuple[Any, ...]]) -> tuple[list[datetime], int, int]:
    """``_copy_rows`` where there is no COPY (the embedded ``make run`` on SQLite, whose events are written as they
    are recorded): the same rules, through the ORM."""
    from django.contrib.auth import get_user_model

    from apps.organizations.models import Organization

    records = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    organizations = set(
        Organization.objects.filter(pk__in={r["organization_id"] for r in records}).values_list("pk", flat=True)
    )
    actors = {r["actor_id"] for r in records if r["actor_id"] is not None}
    users = set(get_user_model().objects.filter(pk__in=actors).values_list("pk", flat=True))
    seen = set(
        UsageEvent.objects.filter(event_id__in=[r["event_id"] for r in records]).values_list("event_id", flat=True)
    )
    fresh, dropped = [], 0
    for record in records:
        if record["organization_id"] not in organizations:
            dropped += 1
            continue
        if record["event_id"] in seen:
            continue
        seen.add(record["event_id"])
        if record["actor_id"] not in users:
            record["actor_id"] = None
        record["metadata"] = json.loads(record["metadata"])
        fresh.append(UsageEvent(**record))
    UsageEvent.objects.bulk_create(fresh)
    hours = [event.created_at.replace(minute=0, second=0, microsecond=0) for event in fresh]
    return hours, len(fresh), dropped


def _store_checked(rows: list[tuple[int, tuple[Any, ...]]], stored: Stored, hours: list[datetime]) -> None:
    """Insert ``rows`` (index, values) in a savepoint; if the database refuses the batch (a value checked too
    loosely above), split it in halves until the row it refuses is alone, and reject that row only."""
    import psycopg
    from django.db import DataError, IntegrityError

    # COPY goes through psycopg's own cursor, whose errors Django does not wrap: both kinds are caught.
    refused = (DataError, IntegrityError, psycopg.DataError, psycopg.IntegrityError)
    try:
        with transaction.atomic():
            touched, inserted, dropped = _copy_rows([values for _index, values in rows])
    except refused as exc:
        if len(rows) == 1:
            stored.rejected.append((rows[0][0], f"refused by the database: {str(exc).strip()[:300]}"))
            return
        middle = len(rows) // 2
        _store_checked(rows[:middle], stored, hours)
        _store_checked(rows[middle:], stored, hours)
        return
    hours.extend(touched)
    stored.inserted += inserted
    stored.dropped += dropped
    stored.duplicates += len(rows) - inserted - dropped


def store_events(events: list[Any]) -> Stored:
    """Insert ``events`` (the stream's form) once each, in one transaction, and mark their buckets for the rollup.

    The batch goes through COPY into a temporary table and one ``INSERT ... SELECT ... ON CONFLICT (event_id) DO
    NOTHING``: an event already stored (read again after a drain died before acknowledging) is skipped, and so is a
    second copy in the same batch. Events of organizations that no longer exist are dropped; users that no longer
    exist become anonymous. An event that cannot be stored (not an object, a missing or malformed field, a number
    out of its column's range) is rejected, with its reason, and does not hold up the others."""
    stored = Stored()
    rows: list[tuple[int, tuple[Any, ...]]] = []
    for index, event in enumerate(events):
        try:
            rows.append((index, _values(event)))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # Rejected is a ValueError
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            stored.rejected.append((index, reason[:300]))
    if not rows:
        return stored
    hours: list[datetime] = []
    with transaction.atomic():
        _store_checked(rows, stored, hours)
        mark_pending(hours)
    for index, reason in stored.rejected:
        logger.warning("Rejected a usage event (%s): %r", reason, events[index])
    return stored


def _ensure_group(redis_client: Any) -> None:
    import redis

    try:
        redis_client.xgroup_create(usage.STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _parse(entries: list[Any]) -> tuple[list[bytes], list[tuple[bytes, bytes, Any]], list[tuple[bytes, bytes, str]]]:
    """The entries' ids; (id, raw, event) of the readable ones; (id, raw, reason) of those that are not JSON."""
    ids, readable, unreadable = [], [], []
    for entry_id, fields in entries:
        ids.append(entry_id)
        raw = fields.get(b"e", b"") if isinstance(fields, dict) else b""
        try:
            readable.append((entry_id, raw, json.loads(fields[b"e"])))
        except (KeyError, TypeError, ValueError) as exc:
            unreadable.append((entry_id, raw, f"unreadable: {exc!r}"[:300]))
    return ids, readable, unreadable


def acknowledge(redis_client: Any, ids: list[bytes], rejected: list[tuple[bytes, bytes, str]] = ()) -> None:
    """After the commit: the entries are done (acknowledged for the group and removed from the stream), and those
    that could not be stored are kept in ``REJECTED`` with their reason, all in one MULTI/EXEC."""
    max_length = int(getattr(settings, "USAGE_REJECTED_MAX_LENGTH", 100_000))
    pipe = redis_client.pipeline(transaction=True)
    for entry_id, raw, reason in rejected:
        pipe.xadd(REJECTED, {"e": raw, "entry": entry_id, "reason": reason}, maxlen=max_length, approximate=True)
    pipe.xack(usage.STREAM, GROUP, *ids)
    pipe.xdel(usage.STREAM, *ids)
    pipe.execute()


def drain_usage_stream(*, batch_size: int | None = None, max_seconds: float | None = None) -> DrainReport:
    """Copy what waits in the stream into the database: first the entries this consumer read before and did not
    acknowledge (a drain killed mid-way), then new ones, in batches, until the stream is empty or ``max_seconds``.
    Entries that cannot be stored go to ``REJECTED`` (with why) as their batch is acknowledged: they hold nothing up
    and are not lost without a trace (``report.rejected``, a warning in the log, the stream)."""
    report = DrainReport()
    redis_client = usage.client()
    if redis_client is None:
        return report
    batch_size = batch_size or int(getattr(settings, "USAGE_DRAIN_BATCH_SIZE", 5000))
    max_seconds = max_seconds if max_seconds is not None else float(getattr(settings, "USAGE_DRAIN_MAX_SECONDS", 50))
    lock_value = f"{os.getpid()}:{uuid.uuid4().hex}"
    lock_seconds = int(getattr(settings, "USAGE_DRAIN_LOCK_SECONDS", 30))
    if not redis_client.set(LOCK, lock_value, nx=True, ex=lock_seconds):
        report.busy = True
        return report
    started = time.monotonic()
    try:
        _ensure_group(redis_client)
        deadline = started + max_seconds
        for start in ("0", ">"):
            while time.monotonic() < deadline:
                answer = redis_client.xreadgroup(GROUP, CONSUMER, {usage.STREAM: start}, count=batch_size)
                entries = answer[0][1] if answer else []
                if not entries:
                    break
                ids, readable, rejected = _parse(entries)
                stored = store_events([event for _entry_id, _raw, event in readable])
                rejected += [(readable[index][0], readable[index][1], reason) for index, reason in stored.rejected]
                acknowledge(redis_client, ids, rejected)
                report.inserted += stored.inserted
                report.duplicates += stored.duplicates
                report.dropped += stored.dropped
                report.rejected += len(rejected)
                report.batches += 1
                redis_client.expire(LOCK, lock_seconds)  # held while batches go on; a dead drain's lapses
    finally:
        if redis_client.get(LOCK) == lock_value.encode():
            redis_client.delete(LOCK)
    report.seconds = time.monotonic() - started
    if report.inserted or report.dropped or report.rejected:
        logger.info(
            "Usage drain: %d inserted, %d already there, %d dropped (organization gone), %d rejected, in %.2f s "
            "(%.0f events/s)",
            report.inserted, report.duplicates, report.dropped, report.rejected, report.seconds,
            (report.inserted + report.duplicates) / max(report.seconds, 1e-9),
        )  # fmt: skip
    return report


def pending_in_stream() -> int:
    """How many entries wait in the stream (read or not): the drain's backlog."""
    redis_client = usage.client()
    if redis_client is None:
        return 0
    try:
        return int(redis_client.xlen(usage.STREAM))
    except Exception:
        return 0


def prune_raw_events(*, older_than_days: int | None = None, batch: int = 10_000) -> int:
    """Delete raw events past their retention (``USAGE_RAW_RETENTION_DAYS``; 0 keeps them), in batches. Rollups
    are kept (``USAGE_HOURLY_ROLLUP_RETENTION_DAYS`` for hourly ones, daily ones for good), and their active-user
    rows with them."""
    from apps.analytics.models import UsageActiveUser, UsageRollup

    days = older_than_days if older_than_days is not None else int(getattr(settings, "USAGE_RAW_RETENTION_DAYS", 90))
    deleted = 0
    if days > 0:
        cutoff = timezone.now() - timedelta(days=days)
        while True:
            ids = list(UsageEvent.objects.filter(created_at__lt=cutoff).order_by().values_list("pk", flat=True)[:batch])
            if not ids:
                break
            deleted += UsageEvent.objects.filter(pk__in=ids).delete()[0]
        # A late event of a pruned day must not roll the day up again from a part of its events.
        PendingRollup.objects.filter(bucket_start__lt=cutoff).delete()
    hourly_days = int(getattr(settings, "USAGE_HOURLY_ROLLUP_RETENTION_DAYS", 400))
    if hourly_days > 0:
        before = timezone.now() - timedelta(days=hourly_days)
        UsageRollup.objects.filter(granularity=Granularity.HOUR, bucket_start__lt=before).delete()
        UsageActiveUser.objects.filter(granularity=Granularity.HOUR, bucket_start__lt=before).delete()
    return deleted
