from __future__ import annotations

from django.contrib import admin

from apps.analytics.models import UsageEvent


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "organization", "actor", "subject_label", "path", "bytes", "status_code")
    list_filter = ("kind", "status_code")
    search_fields = ("subject_label", "subject_id", "path", "blob_sha256", "actor__handle", "organization__slug")
    date_hierarchy = "created_at"
    raw_id_fields = ("organization", "actor")

    def has_change_permission(self, request, obj=None) -> bool:
        return False
