"""``manage.py reap_jobs``: one pass of the job reaper (beat runs it every minute; see docs/operator/jobs.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.core.job_services import reap_stale_jobs


class Command(BaseCommand):
    help = (
        "Re-queue running jobs whose worker was lost (stale heartbeat), or fail them past their maximum attempts; "
        "send again the messages of queued jobs that no worker claimed in time."
    )

    def handle(self, *args, **options) -> None:
        report = reap_stale_jobs()
        for job in report.requeued:
            self.stdout.write(f"re-queued {job.uuid} ({job.kind}), attempt {job.attempts} of {job.max_attempts}")
        for job in report.failed:
            self.stdout.write(f"failed {job.uuid} ({job.kind}): {job.error}")
        for job in report.resent:
            self.stdout.write(f"sent again {job.uuid} ({job.kind}), re-send {job.resends}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(report.requeued)} re-queued, {len(report.failed)} failed, {len(report.resent)} sent again"
            )
        )
