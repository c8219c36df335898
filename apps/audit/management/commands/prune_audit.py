"""``manage.py prune_audit``: delete audit events older than the retention period, checkpointing every chain."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.audit.services import prune_all_chains


class Command(BaseCommand):
    help = (
        "Delete audit events older than --days (default AUDIT_RETENTION_DAYS) from every chain. Each chain that "
        "loses events first gets a checkpoint event carrying the hash of the last deleted one, so it still verifies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"keep this many days of events (default: AUDIT_RETENTION_DAYS, now {settings.AUDIT_RETENTION_DAYS})",
        )
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; change nothing")

    def handle(self, *args, days: int | None, dry_run: bool, **options) -> None:
        days = settings.AUDIT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError(f"--days must be at least 1, got {days}.")
        older_than = timezone.now() - timedelta(days=days)
        results = prune_all_chains(older_than=older_than, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for result in results:
            line = f"{result.chain_key}: {verb} {result.deleted} event(s) up to seq {result.last_deleted_seq}"
            if result.checkpoint is not None:
                line += f", checkpoint at seq {result.checkpoint.seq}"
            self.stdout.write(line)
        total = sum(r.deleted for r in results)
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb.capitalize()} {total} audit event(s) older than {days} day(s) "
                f"({older_than:%Y-%m-%d %H:%M} UTC) from {len(results)} chain(s)."
            )
        )
