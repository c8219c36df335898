"""Serializers of the catalog API. Input serializers only shape and type-check: the services validate and save."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.access import Visibility
from apps.core.api.serializers import CachedFieldsModelSerializer, absolute_url
from apps.marketplace.markdown import render_markdown
from apps.marketplace.models import (
    Alias,
    AliasChange,
    FileRole,
    Model,
    ModelVersion,
    UploadSession,
    UploadStatus,
    ValidationStatus,
    VersionFile,
    VersionStatus,
)


def file_url(request, version_file: VersionFile) -> str:
    version = version_file.version
    model = version.model
    url = reverse(
        "api:model-version-file-detail",
        kwargs={
            "owner": model.organization.slug,
            "name": model.name,
            "label": version.label,
            "path": version_file.path,
        },
    )
    return absolute_url(request, url)


class VersionFileSerializer(CachedFieldsModelSerializer):
    """A file of a version: path, role, size, SHA-256 and where to download it."""

    size = serializers.IntegerField(source="blob.size", read_only=True)
    sha256 = serializers.CharField(source="blob.sha256", read_only=True)
    download_url = serializers.SerializerMethodField()
    blob_url = serializers.SerializerMethodField()

    class Meta:
        model = VersionFile
        fields = ["path", "role", "size", "sha256", "created_at", "download_url", "blob_url"]
        read_only_fields = fields

    def get_download_url(self, obj: VersionFile) -> str:
        return file_url(self.context.get("request"), obj)

    def get_blob_url(self, obj: VersionFile) -> str:
        url = reverse("api:model-blob-download", kwargs={"sha256": obj.blob.sha256})
        return absolute_url(self.context.get("request"), url)


class ModelSerializer(CachedFieldsModelSerializer):
    """A model as listed: who owns it, what it does, how visible it is, its latest published version."""

    owner = serializers.CharField(source="organization.slug", read_only=True)
    full_name = serializers.CharField(read_only=True)
    created_by = serializers.CharField(source="created_by.handle", read_only=True, default=None)
    latest_version = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Model
        fields = [
            "uuid",
            "owner",
            "name",
            "full_name",
            "summary",
            "task",
            "tags",
            "license",
            "visibility",
            "source_registry",
            "external_id",
            "latest_version",
            "created_by",
            "created_at",
            "updated_at",
            "url",
        ]
        read_only_fields = fields

    def get_latest_version(self, obj: Model) -> str | None:
        return getattr(obj, "latest_version_label", None)

    def get_url(self, obj: Model) -> str:
        url = reverse("api:model-detail", kwargs={"owner": obj.organization.slug, "name": obj.name})
        return absolute_url(self.context.get("request"), url)


class ModelDetailSerializer(ModelSerializer):
    """A model with its card (Markdown, and as sanitized HTML) and aliases."""

    card_html = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField()
    deleted_at = serializers.DateTimeField(read_only=True)
    purge_after = serializers.DateTimeField(read_only=True)

    class Meta(ModelSerializer.Meta):
        fields = [*ModelSerializer.Meta.fields, "card", "card_html", "aliases", "deleted_at", "purge_after"]
        read_only_fields = fields

    def get_card_html(self, obj: Model) -> str:
        return render_markdown(obj.card)

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_aliases(self, obj: Model) -> dict:
        return {alias.name: alias.version.label for alias in obj.aliases.select_related("version")}


class ModelCreateSerializer(serializers.Serializer):
    """What a new model needs: a name (unique in the organization); the rest is optional."""

    name = serializers.CharField(max_length=96)
    summary = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    card = serializers.CharField(
        max_length=200_000, required=False, allow_blank=True, default="", trim_whitespace=False
    )
    task = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)
    license = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False, default=Visibility.PRIVATE)
    source_registry = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    external_id = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class ModelUpdateSerializer(serializers.Serializer):
    """The fields of a model that may change (all optional)."""

    name = serializers.CharField(max_length=96, required=False)
    summary = serializers.CharField(max_length=300, required=False, allow_blank=True)
    card = serializers.CharField(max_length=200_000, required=False, allow_blank=True, trim_whitespace=False)
    task = serializers.CharField(max_length=60, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    license = serializers.CharField(max_length=100, required=False, allow_blank=True)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class VersionSerializer(CachedFieldsModelSerializer):
    """A version with its status, validation outcome, signature and files."""

    status = serializers.ChoiceField(choices=VersionStatus.choices, read_only=True)
    validation_status = serializers.ChoiceField(choices=ValidationStatus.choices, read_only=True)
    validation_job = serializers.UUIDField(source="validation_job.uuid", read_only=True, default=None)
    created_by = serializers.CharField(source="created_by.handle", read_only=True, default=None)
    files = VersionFileSerializer(many=True, read_only=True)
    total_size = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField()
    changelog_html = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "uuid",
            "label",
            "status",
            "changelog",
            "changelog_html",
            "signature",
            "onnx_info",
            "detected_task",
            "validation_status",
            "validation_message",
            "validation_job",
            "published_at",
            "deprecated_at",
            "yanked_at",
            "yank_reason",
            "created_by",
            "created_at",
            "updated_at",
            "aliases",
            "total_size",
            "files",
        ]
        read_only_fields = fields

    def get_total_size(self, obj: ModelVersion) -> int:
        return sum(f.blob.size for f in obj.files.all())

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        return [alias.name for alias in obj.aliases.all()]

    def get_changelog_html(self, obj: ModelVersion) -> str:
        return render_markdown(obj.changelog)


MANIFEST_MAX_CHARACTERS = 256 * 1024  # the gpux.yml limit (Limits.max_manifest_bytes), also checked in bytes


class VersionCreateSerializer(serializers.Serializer):
    label = serializers.CharField(
        max_length=64, required=False, help_text="Required unless a manifest gives it (its ``version``)."
    )
    changelog = serializers.CharField(
        max_length=50_000, required=False, allow_blank=True, default="", trim_whitespace=False
    )
    manifest = serializers.CharField(
        max_length=MANIFEST_MAX_CHARACTERS,
        required=False,
        trim_whitespace=False,
        help_text="A gpux.yml (its text): the draft is created with it as its gpux.yml, labelled by its "
        "``version`` unless ``label`` is given. Upload the model file it names afterwards.",
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("label") and not attrs.get("manifest"):
            raise serializers.ValidationError({"label": ["This field is required (or send a gpux.yml as manifest)."]})
        return attrs


class ManifestImportSerializer(serializers.Serializer):
    """A gpux.yml sent inside JSON (the route also takes the YAML itself as the body)."""

    manifest = serializers.CharField(max_length=MANIFEST_MAX_CHARACTERS, trim_whitespace=False)


class VersionUpdateSerializer(serializers.Serializer):
    changelog = serializers.CharField(max_length=50_000, allow_blank=True, trim_whitespace=False)


class YankSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why: shown to everyone who asks for the version.")


class DeprecateSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class FileUploadSerializer(serializers.Serializer):
    """A multipart upload of one (small) file; for large files use an upload session."""

    file = serializers.FileField(allow_empty_file=True, use_url=False)
    path = serializers.CharField(
        max_length=500, required=False, help_text="Where in the version; the uploaded file's name by default."
    )
    role = serializers.ChoiceField(choices=FileRole.choices, required=False)
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$",
        required=False,
        help_text="The file's SHA-256, if you know it: verified, and bytes your organization already stores cost "
        "no quota.",
    )


class UploadSessionCreateSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=500)
    size = serializers.IntegerField(min_value=0)
    sha256 = serializers.CharField(max_length=64, min_length=64)


class UploadJobSerializer(serializers.Serializer):
    """The job verifying a large upload: poll ``url`` (``GET /api/v1/jobs/{uuid}/``) for its progress."""

    uuid = serializers.UUIDField()
    url = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.FloatField()


class UploadSessionSerializer(CachedFieldsModelSerializer):
    """A resumable upload: resume at ``offset``; PATCH chunks to ``upload_url``, then POST ``complete_url``.

    ``status``: ``open`` (taking chunks), ``verifying`` (a job checks the bytes: see ``job``), ``completed``
    (``file``), ``failed`` (``error`` says why; nothing stored), ``aborted`` or ``expired``.
    """

    status = serializers.ChoiceField(choices=UploadStatus.choices, read_only=True)
    model = serializers.CharField(source="version.model.full_name", read_only=True)
    version = serializers.CharField(source="version.label", read_only=True)
    upload_url = serializers.SerializerMethodField()
    complete_url = serializers.SerializerMethodField()
    file = serializers.SerializerMethodField()
    job = serializers.SerializerMethodField()
    error = serializers.CharField(read_only=True)

    class Meta:
        model = UploadSession
        fields = [
            "uuid",
            "model",
            "version",
            "path",
            "size",
            "sha256",
            "offset",
            "status",
            "created_at",
            "updated_at",
            "expires_at",
            "upload_url",
            "complete_url",
            "file",
            "job",
            "error",
        ]
        read_only_fields = fields

    def get_upload_url(self, obj: UploadSession) -> str:
        return absolute_url(self.context.get("request"), reverse("api:model-upload-detail", kwargs={"uuid": obj.uuid}))

    def get_complete_url(self, obj: UploadSession) -> str:
        return absolute_url(
            self.context.get("request"), reverse("api:model-upload-complete", kwargs={"uuid": obj.uuid})
        )

    @extend_schema_field(VersionFileSerializer(allow_null=True))
    def get_file(self, obj: UploadSession) -> dict | None:
        if obj.file is None:
            return None
        return VersionFileSerializer(obj.file, context=self.context).data

    @extend_schema_field(UploadJobSerializer(allow_null=True))
    def get_job(self, obj: UploadSession) -> dict | None:
        job = obj.job  # the latest completion job (select_related("job") in listings)
        if job is None:
            return None
        url = absolute_url(self.context.get("request"), reverse("api:job-detail", kwargs={"uuid": job.uuid}))
        return {"uuid": job.uuid, "url": url, "status": job.status, "progress": job.progress}


class AliasChangeSerializer(CachedFieldsModelSerializer):
    actor = serializers.CharField(source="actor.handle", read_only=True, default=None)

    class Meta:
        model = AliasChange
        fields = ["from_label", "to_label", "actor", "created_at"]
        read_only_fields = fields


class AliasSerializer(CachedFieldsModelSerializer):
    """An alias, the version it points at, and its moves (newest first)."""

    version = serializers.CharField(source="version.label", read_only=True)
    history = AliasChangeSerializer(source="changes", many=True, read_only=True)

    class Meta:
        model = Alias
        fields = ["name", "version", "created_at", "updated_at", "history"]
        read_only_fields = fields


class AliasSetSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=40)
    version = serializers.CharField(max_length=64, help_text="The label of a published version.")


class SignedLinkSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()


class StorageUsageSerializer(serializers.Serializer):
    quota_bytes = serializers.IntegerField(allow_null=True)
    used_bytes = serializers.IntegerField()
    reserved_bytes = serializers.IntegerField()
    available_bytes = serializers.IntegerField(allow_null=True)
