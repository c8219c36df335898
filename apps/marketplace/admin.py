"""Django admin for operators: the catalog's models, versions, files, blobs, aliases and upload sessions."""

from __future__ import annotations

from django.contrib import admin
from django.template.defaultfilters import filesizeformat

from apps.marketplace.models import Alias, AliasChange, Blob, Model, ModelVersion, UploadSession, VersionFile


class VersionInline(admin.TabularInline):
    model = ModelVersion
    fields = ("label", "status", "validation_status", "published_at", "created_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ("__str__", "visibility", "task", "license", "created_at", "deleted_at")
    list_filter = ("visibility", "task", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "organization__slug", "summary")
    raw_id_fields = ("organization", "created_by")
    readonly_fields = ("uuid", "created_at", "updated_at")
    inlines = [VersionInline]

    def get_queryset(self, request):
        return Model.with_deleted.select_related("organization")


class FileInline(admin.TabularInline):
    model = VersionFile
    fields = ("path", "role", "blob")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "validation_status", "published_at", "yanked_at")
    list_filter = ("status", "validation_status")
    search_fields = ("label", "model__name", "model__organization__slug")
    raw_id_fields = ("model", "created_by", "validation_job")
    readonly_fields = ("uuid", "signature", "onnx_info", "created_at", "updated_at")
    inlines = [FileInline]


@admin.register(Blob)
class BlobAdmin(admin.ModelAdmin):
    list_display = ("sha256", "human_size", "created_at")
    search_fields = ("sha256",)
    readonly_fields = ("sha256", "size", "storage_name", "created_at")

    @admin.display(description="size", ordering="size")
    def human_size(self, obj: Blob) -> str:
        return filesizeformat(obj.size)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AliasChangeInline(admin.TabularInline):
    model = AliasChange
    fields = ("from_label", "to_label", "actor", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin):
    list_display = ("__str__", "version", "updated_at")
    search_fields = ("name", "model__name", "model__organization__slug")
    raw_id_fields = ("model", "version")
    inlines = [AliasChangeInline]


@admin.register(UploadSession)
class UploadSessionAdmin(admin.ModelAdmin):
    list_display = ("uuid", "version", "path", "offset", "size", "status", "expires_at")
    list_filter = ("status",)
    search_fields = ("uuid", "path", "sha256")
    raw_id_fields = ("version", "created_by", "file")
    readonly_fields = ("uuid", "created_at", "updated_at")
