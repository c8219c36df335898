"""Periodic analytics work (celery beat, docs/admin/analytics.md): drain the usage stream, roll usage up, prune.
Thin: each calls a service. They are not Jobs (a Job row per run of a five-second schedule would be noise)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="analytics.drain_usage_events", ignore_result=True)
def drain_usage_events() -> dict[str, int]:
    from apps.analytics.drain import drain_usage_stream

    report = drain_usage_stream()
    return {
        "inserted": report.inserted,
        "duplicates": report.duplicates,
        "dropped": report.dropped,
        "rejected": report.rejected,
    }


@shared_task(name="analytics.roll_up_usage", ignore_result=True)
def roll_up_usage() -> dict[str, int]:
    from apps.analytics.rollups import roll_up_pending

    return roll_up_pending()


@shared_task(name="analytics.prune_usage_events", ignore_result=True)
def prune_usage_events() -> int:
    from apps.analytics.drain import prune_raw_events

    return prune_raw_events()
