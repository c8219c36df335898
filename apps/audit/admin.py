"""Operators read the audit trail in the Django admin; nobody adds, changes or deletes events there."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.audit.models import AuditChain, AuditEvent
from apps.audit.verification import verify_chain


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "chain", "seq", "kind", "action", "actor_label", "target_type", "target_label", "ip")
    list_filter = ("kind", ("created_at", admin.DateFieldListFilter), "action")
    search_fields = (
        "action",
        "actor_label",
        "target_type",
        "target_id",
        "target_label",
        "=uuid",
        "=hash",
        "=chain__key",
    )
    list_select_related = ("chain",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    fields = (
        "uuid",
        "chain",
        "seq",
        "kind",
        "created_at",
        "organization_id",
        "actor_id",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "ip",
        "user_agent",
        "diff",
        "metadata",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields


@admin.register(AuditChain)
class AuditChainAdmin(ReadOnlyAdmin):
    list_display = ("key", "organization_id", "head_seq", "head_hash", "created_at")
    search_fields = ("=key",)
    ordering = ("key",)
    fields = ("key", "organization_id", "head_seq", "head_hash", "created_at")
    readonly_fields = fields
    actions = ["verify_chains"]

    @admin.action(description="Verify the selected chains")
    def verify_chains(self, request: HttpRequest, queryset: QuerySet[AuditChain]) -> None:
        for key in queryset.values_list("key", flat=True):
            result = verify_chain(key)
            self.message_user(request, str(result), messages.SUCCESS if result.ok else messages.ERROR)
