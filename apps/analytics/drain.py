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
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
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

_INT_FIELDS = ("user_id", "token_id", "model_id", "version_id", "deployment_id")


@dataclass
class DrainReport:
    inserted: int = 0
    duplicates: int = 0
    dropped: int = 0
    batches: int = 0
    busy: bool = False


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


def _row(event: dict[str, Any]) -> UsageEvent:
    metadata = event.get("metadata") or {}
    return UsageEvent(
        event_id=uuid.UUID(str(event["id"])),
        created_at=datetime.fromtimestamp(float(event["t"]), UTC),
        kind=str(event["kind"])[:40],
        organization_id=int(event["org"]),
        actor_id=event.get("user_id"),
        token_id=event.get("token_id"),
        token_kind=str(event.get("token_kind") or "")[:10],
        model_id=event.get("model_id"),
        version_id=event.get("version_id"),
        deployment_id=event.get("deployment_id"),
        subject_type=str(event.get("subject_type") or "")[:100],
        subject_id=str(event.get("subject_id") or "")[:64],
        subject_label=str(event.get("subject_label") or "")[:300],
        path=str(event.get("path") or "")[:500],
        blob_sha256=str(event.get("blob_sha256") or "")[:64],
        items=int(event.get("items", 1)),
        bytes=int(event.get("bytes", 0)),
        latency_ms=None if event.get("latency_ms") is None else float(event["latency_ms"]),
        compute_seconds=float(event.get("compute_seconds") or 0.0),
        device=str(event.get("device") or "")[:20],
        outcome=str(event.get("outcome") or "ok")[:10],
        status_code=int(event.get("status_code", 200)),
        metadata=metadata if isinstance(metadata, dict) else {"value": metadata},
    )


def store_events(events: list[dict[str, Any]]) -> tuple[int, int, int]:
    """Insert ``events`` (the stream's form) once each, in one transaction, and mark their buckets for the rollup.
    Events of organizations that no longer exist are dropped; users that no longer exist become anonymous.
    Returns (inserted, duplicates, dropped)."""
    from django.contrib.auth import get_user_model

    from apps.organizations.models import Organization

    rows: list[UsageEvent] = []
    dropped = 0
    for event in events:
        try:
            for name in _INT_FIELDS:
                if event.get(name) is not None:
                    event[name] = int(event[name])
            rows.append(_row(event))
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("Dropping a malformed usage event %r: %s", event, exc)
            dropped += 1
    if not rows:
        return 0, 0, dropped
    with transaction.atomic():
        organizations = set(
            Organization.objects.filter(pk__in={row.organization_id for row in rows}).values_list("pk", flat=True)
        )
        users = set(
            get_user_model()
            .objects.filter(pk__in={row.actor_id for row in rows if row.actor_id})
            .values_list("pk", flat=True)
        )
        kept = []
        for row in rows:
            if row.organization_id not in organizations:
                dropped += 1
                continue
            if row.actor_id is not None and row.actor_id not in users:
                row.actor_id = None
            kept.append(row)
        ids = [row.event_id for row in kept]
        present = set(UsageEvent.objects.filter(event_id__in=ids).values_list("event_id", flat=True)) if ids else set()
        fresh = [row for row in kept if row.event_id not in present]
        seen: set[uuid.UUID] = set()
        unique = []
        for row in fresh:
            if row.event_id not in seen:
                seen.add(row.event_id)
                unique.append(row)
        UsageEvent.objects.bulk_create(unique, ignore_conflicts=True, batch_size=2000)
        mark_pending(row.created_at for row in unique)
    return len(unique), len(kept) - len(unique), dropped


def _ensure_group(redis_client: Any) -> None:
    import redis

    try:
        redis_client.xgroup_create(usage.STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _parse(entries: list[Any]) -> tuple[list[bytes], list[dict[str, Any]], int]:
    ids, events, bad = [], [], 0
    for entry_id, fields in entries:
        ids.append(entry_id)
        try:
            events.append(json.loads(fields[b"e"]))
        except (KeyError, TypeError, ValueError):
            logger.warning("Dropping an unreadable usage stream entry %r", entry_id)
            bad += 1
    return ids, events, bad


def acknowledge(redis_client: Any, ids: list[bytes]) -> None:
    """After the commit: the entries are done (acknowledged for the group and removed from the stream)."""
    pipe = redis_client.pipeline(transaction=False)
    pipe.xack(usage.STREAM, GROUP, *ids)
    pipe.xdel(usage.STREAM, *ids)
    pipe.execute()


def drain_usage_stream(*, batch_size: int | None = None, max_seconds: float | None = None) -> DrainReport:
    """Copy what waits in the stream into the database: first the entries this consumer read before and did not
    acknowledge (a drain killed mid-way), then new ones, in batches, until the stream is empty or ``max_seconds``."""
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
    try:
        _ensure_group(redis_client)
        deadline = time.monotonic() + max_seconds
        for start in ("0", ">"):
            while time.monotonic() < deadline:
                answer = redis_client.xreadgroup(GROUP, CONSUMER, {usage.STREAM: start}, count=batch_size)
                entries = answer[0][1] if answer else []
                if not entries:
                    break
                ids, events, bad = _parse(entries)
                inserted, duplicates, dropped = store_events(events)
                acknowledge(redis_client, ids)
                report.inserted += inserted
                report.duplicates += duplicates
                report.dropped += dropped + bad
                report.batches += 1
                redis_client.expire(LOCK, lock_seconds)  # held while batches go on; a dead drain's lapses
    finally:
        if redis_client.get(LOCK) == lock_value.encode():
            redis_client.delete(LOCK)
    if report.inserted or report.dropped:
        logger.info(
            "Usage drain: %d inserted, %d already there, %d dropped", report.inserted, report.duplicates, report.dropped
        )
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
    are kept (``USAGE_HOURLY_ROLLUP_RETENTION_DAYS`` for hourly ones, daily ones for good)."""
    from apps.analytics.models import UsageRollup

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
        UsageRollup.objects.filter(
            granularity=Granularity.HOUR, bucket_start__lt=timezone.now() - timedelta(days=hourly_days)
        ).delete()
    return deleted
