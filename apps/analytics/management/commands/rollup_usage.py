"""``manage.py rollup_usage [--since DATE] [--until DATE]``: roll up usage now (the periodic job's work); with
``--since``, first mark every hour and day of the range so that it is recounted from the raw events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError

from apps.analytics.rollups import mark_range, roll_up_pending


class Command(BaseCommand):
    help = "Roll up pending usage buckets; --since/--until recount a range of days (UTC) from the raw events."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="first day to recount, YYYY-MM-DD")
        parser.add_argument("--until", help="last day to recount (included), YYYY-MM-DD; default today")

    def handle(self, *args, since: str | None = None, until: str | None = None, **options) -> None:
        if since:
            try:
                start = datetime.fromisoformat(since).replace(tzinfo=UTC)
                end = (datetime.fromisoformat(until).replace(tzinfo=UTC) if until else datetime.now(UTC)).replace(
                    hour=0, minute=0, second=0, microsecond=0
                ) + timedelta(days=1)
            except ValueError as exc:
                raise CommandError(f"Dates are YYYY-MM-DD: {exc}") from exc
            self.stdout.write(f"Marked {mark_range(start, end)} hours for the rollup.")
        done = roll_up_pending(max_seconds=86_400)
        self.stdout.write(f"Rolled up {done['hours']} hours and {done['days']} days ({done['rows']} rows).")
