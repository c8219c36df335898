"""Operators' admin for jobs: read-only records with filters, plus cancel and reap actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.job_services import cancel_job, reap_stale_jobs
from apps.core.jobs import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "uuid",
        "kind",
        "organization",
        "creator",
        "status",
        "progress_percent",
        "attempts",
        "queue",
        "created_at",
        "heartbeat_at",
        "finished_at",
    )
    list_filter = ("status", "kind", "queue", "created_at")
    search_fields = ("uuid", "kind", "organization__slug", "creator__handle", "creator__email", "error")
    list_select_related = ("organization", "creator")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    actions = ("cancel_selected", "reap_stale")
    fieldsets = (
        (None, {"fields": ("uuid", "kind", "organization", "creator", "params", "queue")}),
        ("State", {"fields": ("status", "progress", "progress_message", "attempts", "max_attempts", "time_limit")}),
        ("Outcome", {"fields": ("result", "result_file", "error", "traceback")}),
        ("Times", {"fields": ("created_at", "started_at", "heartbeat_at", "finished_at", "resend_at", "resends")}),
    )

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, job: Job) -> str:
        return f"{job.progress:.0%}"

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        # Job rows change only through the job services (conditional updates); the admin looks, cancels, reaps.
        return [field.name for field in Job._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    @admin.action(description="Cancel the selected queued or running jobs", permissions=["view"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        cancelled = sum(cancel_job(job=job, actor=request.user) for job in queryset)
        self.message_user(request, f"Cancelled {cancelled} job(s); finished jobs were left as they were.")

    @admin.action(
        description="Reap stale running jobs and re-send unclaimed queued ones now (all, not only the selected)",
        permissions=["view"],
    )
    def reap_stale(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        report = reap_stale_jobs()
        self.message_user(
            request,
            f"Re-queued {len(report.requeued)} and failed {len(report.failed)} stale job(s); sent "
            f"{len(report.resent)} unclaimed queued job(s) again.",
            level=messages.WARNING if report.failed else messages.INFO,
        )
