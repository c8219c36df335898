"""``manage.py purge_catalog``: purge deleted models past retention, expired uploads and unreferenced blobs."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.marketplace.purge import purge


class Command(BaseCommand):
    help = "Remove soft-deleted models past their retention, close expired uploads, delete unreferenced blobs."

    def handle(self, *args, **options) -> None:
        result = purge()
        self.stdout.write(
            f"Purged {len(result['models'])} models, closed {result['expired_uploads']} expired uploads, "
            f"deleted {len(result['blobs'])} unreferenced blobs."
        )
