from __future__ import annotations

from django.contrib import admin

from apps.analytics.models import QUOTA_LIMITS, OrganizationQuota, Plan, UsageEvent, UsageRollup
from apps.analytics.quotas import forget_cached_limits
from apps.organizations.admin import AuditedAdmin


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "organization", "actor", "token_kind", "subject_label", "items", "bytes",
                    "latency_ms", "outcome")  # fmt: skip
    list_filter = ("kind", "outcome", "token_kind")
    search_fields = ("subject_label", "subject_id", "path", "blob_sha256", "actor__handle", "organization__slug")
    date_hierarchy = "created_at"
    raw_id_fields = ("organization", "actor")

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class _QuotaAdmin(AuditedAdmin):
    """Limits are set by operators; each save or delete is audited (the plan's in the platform chain, an
    organization's in its own) and this process forgets its cached limits (others within QUOTA_CACHE_SECONDS)."""

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        forget_cached_limits()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        forget_cached_limits()


@admin.register(Plan)
class PlanAdmin(_QuotaAdmin):
    audited_fields = ("name", "slug", "is_default", "storage_bytes", *QUOTA_LIMITS)
    list_display = ("name", "slug", "is_default", "api_requests_per_minute", "predictions_per_minute",
                    "gpu_seconds_per_month", "cpu_seconds_per_month", "storage_bytes")  # fmt: skip
    prepopulated_fields = {"slug": ("name",)}

    def organization_of(self, obj):
        return None


@admin.register(OrganizationQuota)
class OrganizationQuotaAdmin(_QuotaAdmin):
    audited_fields = ("plan", *QUOTA_LIMITS)
    list_display = ("organization", "plan", "api_requests_per_minute", "predictions_per_minute",
                    "gpu_seconds_per_month", "cpu_seconds_per_month", "updated_at")  # fmt: skip
    list_filter = ("plan",)
    search_fields = ("organization__slug", "organization__name")
    raw_id_fields = ("organization",)


@admin.register(UsageRollup)
class UsageRollupAdmin(admin.ModelAdmin):
    list_display = ("bucket_start", "granularity", "organization", "scope", "kind", "token_kind", "events", "errors")
    list_filter = ("granularity", "scope", "kind", "token_kind")
    raw_id_fields = ("organization",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False
