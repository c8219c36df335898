"""The catalog API: models, versions, files (upload and download), resumable uploads, aliases, blobs.

restrict() decides (apps/core/api/views.py): a model the caller may not view answers 404, and so do its
versions, files and uploads; viewable but not allowed answers 403. Roles (docs/api/models.md): viewers read
and download; members create models and versions, upload, publish, deprecate and move aliases; admins delete
models and yank versions. Token scopes: ``read`` for reading and downloading, ``write`` for every change.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analytics.models import UsageKind
from apps.analytics.services import has_used, record_usage
from apps.core.access import Role, Visibility
from apps.core.api.views import (
    OrganizationNestedMixin,
    RestrictedModelViewSet,
    RestrictedViewSetMixin,
    bound_organization_id,
)
from apps.core.jobs import Job
from apps.marketplace import downloads, services, storage, uploads
from apps.marketplace.api.serializers import (
    AliasSerializer,
    AliasSetSerializer,
    DeprecateSerializer,
    FileUploadSerializer,
    ManifestImportSerializer,
    ModelCreateSerializer,
    ModelDetailSerializer,
    ModelSerializer,
    ModelUpdateSerializer,
    SignedLinkSerializer,
    StorageUsageSerializer,
    UploadSessionCreateSerializer,
    UploadSessionSerializer,
    VersionCreateSerializer,
    VersionFileSerializer,
    VersionSerializer,
    VersionUpdateSerializer,
    YankSerializer,
)
from apps.marketplace.exceptions import UploadOffsetMismatch, VersionYanked
from apps.marketplace.filtersets import ModelFilterSet, OrganizationModelFilterSet, VersionFilterSet
from apps.marketplace.models import (
    LIVE_UPLOAD_STATUSES,
    SHA256_PATTERN,
    Alias,
    Model,
    ModelVersion,
    UploadSession,
    VersionFile,
    VersionStatus,
    validate_version_label,
)
from apps.marketplace.onnx.limits import Limits
from apps.marketplace.onnx.manifest import ManifestError, load_yaml, validate_manifest
from apps.marketplace.validation import MANIFEST_PATH, export_version_manifest, import_manifest

OWNER = OpenApiParameter(
    "owner", str, OpenApiParameter.PATH, description="The owning organization's slug or user's handle."
)
NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="The model's name.")
LABEL = OpenApiParameter("label", str, OpenApiParameter.PATH, description="The version's label, e.g. 1.0.0.")
FILE_PATH = OpenApiParameter("path", str, OpenApiParameter.PATH, description="The file's path in the version.")
ALIAS = OpenApiParameter("alias", str, OpenApiParameter.PATH, description="The alias, e.g. production.")
UPLOAD_UUID = OpenApiParameter("uuid", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The upload session.")
SHA256 = OpenApiParameter("sha256", str, OpenApiParameter.PATH, description="The blob's SHA-256, 64 hex digits.")
ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
RANGE = OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False, description="e.g. bytes=0-1023")
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER, required=False, description="The ETag you hold: 304 when unchanged."
)
TOKEN = OpenApiParameter("token", str, OpenApiParameter.QUERY, required=False, description="A signed download token.")
UPLOAD_OFFSET = OpenApiParameter(
    "Upload-Offset", int, OpenApiParameter.HEADER, required=False, description="Where this chunk starts (or ?offset=)."
)
BINARY_RESPONSES = {
    (200, "application/octet-stream"): OpenApiTypes.BINARY,
    (206, "application/octet-stream"): OpenApiTypes.BINARY,
    304: OpenApiResponse(description="Not modified: your copy (If-None-Match) is current."),
    404: OpenApiResponse(description="No such file, or you may not view the model."),
    410: OpenApiResponse(description="The version was yanked."),
    416: OpenApiResponse(description="No requested range overlaps the file."),
}
IMMUTABLE_MAX_AGE = 31_536_000


class CatalogErrorsMixin:
    """Keep the message of a service's Django ``PermissionDenied``."""

    def handle_exception(self, exc):
        if isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) or None)
        return super().handle_exception(exc)


class AnyContentMixin:
    """Download and upload routes answer whatever the client accepts (bytes); errors still come as JSON."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


class ModelLookupMixin(CatalogErrorsMixin):
    """Routes under ``/models/{owner}/{name}/``: the model is resolved through restrict() (404 if not viewable)."""

    def models_for(self, action: str):
        return Model.objects.restrict(
            self.request.user, action, within_organization=bound_organization_id(self.request)
        )

    @property
    def catalog_model(self) -> Model:
        if not hasattr(self, "_catalog_model"):
            self._catalog_model = get_object_or_404(
                self.models_for("view").select_related("organization"),
                organization__slug=self.kwargs["owner"],
                name=self.kwargs["name"],
            )
        return self._catalog_model

    def may(self, action: str) -> bool:
        return self.models_for(action).filter(pk=self.catalog_model.pk).exists()

    def require(self, action: str) -> Model:
        """403 unless the caller may ``action`` the model (the model is visible, or this was a 404 already)."""
        model = self.catalog_model
        if not self.may(action):
            raise exceptions.PermissionDenied(f"You may view {model} but not {action} it.")
        return model

    def lock_model(self, action: str) -> Model:
        """Inside a transaction: the model, locked, if the caller may still ``action`` it; 403 otherwise."""
        locked = self.models_for(action).select_for_update(of=("self",)).filter(pk=self.catalog_model.pk).first()
        if locked is None:
            raise exceptions.PermissionDenied(f"You may not {action} {self.catalog_model}.")
        return locked

    def versions(self):
        return (
            ModelVersion.objects.filter(model=self.catalog_model)
            .select_related("model__organization", "created_by", "validation_job")
            .prefetch_related(Prefetch("files", VersionFile.objects.select_related("blob")), "aliases")
        )

    def version_by_label(self, label: str) -> ModelVersion:
        return get_object_or_404(self.versions(), label=label)

    def refuse_yanked(self, version: ModelVersion, *, pinned: bool) -> None:
        """The yank rule: a yanked version answers 410 unless the caller pinned its exact label and downloaded it
        before (their usage events say so)."""
        if version.status != VersionStatus.YANKED:
            return
        if pinned and has_used(actor=self.request.user, subject=version):
            return
        raise VersionYanked(
            f"Version “{version.label}” of {version.model} was yanked: {version.yank_reason} "
            "Only those who downloaded it before, asking for this exact version, may still get it."
        )


def _latest_published_label():
    published = ModelVersion.objects.filter(
        model=OuterRef("pk"), status__in=(VersionStatus.PUBLISHED, VersionStatus.DEPRECATED)
    ).order_by("-published_at", "-id")
    return Subquery(published.values("label")[:1])


# -- models ---------------------------------------------------------------------------------------------------------
@extend_schema(tags=["models"])
@extend_schema_view(
    list=extend_schema(summary="Models you can see (search and filters: owner, task, tags, license, visibility, q)"),
    retrieve=extend_schema(summary="A model, with its card", parameters=[OWNER, NAME]),
    partial_update=extend_schema(
        summary="Change a model (members)",
        parameters=[OWNER, NAME],
        request=ModelUpdateSerializer,
        responses={200: ModelDetailSerializer},
    ),
    destroy=extend_schema(
        summary="Delete a model (admins): soft, restorable until it is purged",
        parameters=[OWNER, NAME],
        responses={204: None},
    ),
)
class ModelViewSet(CatalogErrorsMixin, RestrictedModelViewSet):
    """Models. Listing shows what restrict() lets the caller view; soft-deleted models do not appear."""

    queryset = Model.objects.select_related("organization", "created_by")
    serializer_class = ModelSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]
    filterset_class = ModelFilterSet
    search_fields = ["name", "summary", "organization__slug", "task"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["organization__slug", "name"]

    def get_queryset(self):
        return super().get_queryset().annotate(latest_version_label=_latest_published_label())

    def get_serializer_class(self):
        return ModelSerializer if self.action == "list" else ModelDetailSerializer

    def get_object(self):
        model = get_object_or_404(
            self.get_queryset(), organization__slug=self.kwargs["owner"], name=self.kwargs["name"]
        )
        self.check_object_permissions(self.request, model)
        restrict_action = self.get_restrict_action()
        if restrict_action not in (None, "view", "create"):
            self.check_restricted(model, restrict_action)
        return model

    def partial_update(self, request, *args, **kwargs) -> Response:
        model = self.get_object()
        serializer = ModelUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            self.lock_restricted(model, "change")
            model = services.update_model(model=model, actor=request.user, **serializer.validated_data)
        fresh = self.get_queryset().get(pk=model.pk)
        return Response(ModelDetailSerializer(fresh, context=self.get_serializer_context()).data)

    def delete_object(self, instance: Model) -> None:
        services.soft_delete_model(model=instance, actor=self.request.user)


@extend_schema(tags=["models"], parameters=[ORG_SLUG])
@extend_schema_view(
    list=extend_schema(summary="An organization's models"),
    create=extend_schema(
        summary="Create a model in the organization (members)",
        request=ModelCreateSerializer,
        responses={201: ModelDetailSerializer},
    ),
)
class OrganizationModelViewSet(
    CatalogErrorsMixin, OrganizationNestedMixin, RestrictedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """``/orgs/{org_slug}/models/``: the organization's models (those the caller may view), and creating one."""

    queryset = Model.objects.select_related("organization", "created_by")
    serializer_class = ModelSerializer
    filterset_class = OrganizationModelFilterSet
    search_fields = ["name", "summary", "task"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]

    def wants_deleted(self) -> bool:
        return self.request.query_params.get("deleted", "").lower() in ("true", "1", "yes")

    def get_queryset(self):
        if getattr(self, "action", None) == "list" and self.wants_deleted():
            # Soft-deleted models exist only for those who may delete (and so restore) them.
            models = Model.with_deleted.deleted().select_related("organization", "created_by")
            models = models.restrict(
                self.request.user, "delete", within_organization=bound_organization_id(self.request)
            ).filter(organization=self.organization)
        else:
            models = super().get_queryset()
        return models.annotate(latest_version_label=_latest_published_label())

    def get_serializer_class(self):
        return ModelDetailSerializer if self.wants_deleted() else ModelSerializer

    def create(self, request, *args, **kwargs) -> Response:
        self.require_role(Role.MEMBER)
        serializer = ModelCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model = services.create_model(organization=self.organization, actor=request.user, **serializer.validated_data)
        fresh = self.get_queryset().get(pk=model.pk)
        return Response(ModelDetailSerializer(fresh, context=self.get_serializer_context()).data, status=201)


@extend_schema(
    tags=["models"],
    summary="Restore a deleted model (admins), until it is purged",
    parameters=[OWNER, NAME],
    request=None,
    responses={200: ModelDetailSerializer},
)
class ModelRestoreView(CatalogErrorsMixin, APIView):
    """POST: undo a soft delete."""

    def get_restrict_action(self) -> str:
        return "delete"

    def post(self, request, owner: str, name: str) -> Response:
        bound = bound_organization_id(request)
        visible = Model.with_deleted.restrict(request.user, "view", within_organization=bound)
        model = get_object_or_404(visible.select_related("organization"), organization__slug=owner, name=name)
        if (
            not Model.with_deleted.restrict(request.user, "delete", within_organization=bound)
            .filter(pk=model.pk)
            .exists()
        ):
            if model.deleted_at is not None:
                # A deleted model has disappeared for everyone who may not restore it: saying 403 would reveal it.
                raise exceptions.NotFound()
            raise exceptions.PermissionDenied(f"Only an admin of “{model.organization.slug}” may restore {model}.")
        model = services.restore_model(model=model, actor=request.user)
        fresh = Model.objects.select_related("organization").annotate(latest_version_label=_latest_published_label())
        return Response(ModelDetailSerializer(fresh.get(pk=model.pk), context={"request": request}).data)


@extend_schema(
    tags=["models"],
    summary="An organization's storage: quota, used, reserved by open uploads, available",
    parameters=[ORG_SLUG],
    responses={200: StorageUsageSerializer},
)
class OrganizationStorageView(CatalogErrorsMixin, OrganizationNestedMixin, APIView):
    """GET: how much of its storage quota the organization uses (its members)."""

    def get(self, request, org_slug: str) -> Response:
        self.require_role(Role.VIEWER)
        return Response(StorageUsageSerializer(storage.storage_usage(self.organization)).data)


# -- versions -------------------------------------------------------------------------------------------------------
@extend_schema(tags=["model versions"], parameters=[OWNER, NAME])
@extend_schema_view(
    list=extend_schema(summary="A model's versions (yanked ones only for those who may change the model)"),
    retrieve=extend_schema(summary="A version, its signature and files", parameters=[LABEL]),
    create=extend_schema(
        summary="Start a draft version (members), optionally from a gpux.yml (``manifest``: its text)",
        request=VersionCreateSerializer,
        responses={201: VersionSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a draft's changelog (members)", parameters=[LABEL], request=VersionUpdateSerializer
    ),
    publish=extend_schema(
        summary="Publish a draft whose validation passed (members)", parameters=[LABEL], request=None
    ),
    deprecate=extend_schema(
        summary="Deprecate a published version (members)", parameters=[LABEL], request=DeprecateSerializer
    ),
    yank=extend_schema(
        summary="Yank a version (admins): hidden from new users, kept for those who pinned it",
        parameters=[LABEL],
        request=YankSerializer,
    ),
    validate=extend_schema(
        summary="Validate a draft again (members)", parameters=[LABEL], request=None, responses={202: VersionSerializer}
    ),
)
class VersionViewSet(ModelLookupMixin, RestrictedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """``/models/{owner}/{name}/versions/``."""

    queryset = ModelVersion.objects.select_related("model__organization", "created_by", "validation_job")
    serializer_class = VersionSerializer
    lookup_field = "label"
    lookup_url_kwarg = "label"
    lookup_value_regex = r"[^/]+"
    filterset_class = VersionFilterSet
    search_fields = ["label", "changelog"]
    ordering_fields = ["created_at", "published_at", "label"]
    ordering = ["-created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def filter_to_parent(self, queryset):
        queryset = queryset.filter(model=self.catalog_model).prefetch_related(
            Prefetch("files", VersionFile.objects.select_related("blob")), "aliases"
        )
        if getattr(self, "action", None) == "list" and not self.may("change"):
            queryset = queryset.exclude(status=VersionStatus.YANKED)
        return queryset

    def get_restrict_action(self) -> str | None:
        if self.action == "create":
            return "change"  # a new version changes the model
        return super().get_restrict_action()

    def _answer(self, version: ModelVersion, status_code: int = 200) -> Response:
        fresh = self.versions().get(pk=version.pk)
        return Response(VersionSerializer(fresh, context=self.get_serializer_context()).data, status=status_code)

    def retrieve(self, request, *args, **kwargs) -> Response:
        version = self.get_object()
        if not self.may("change"):
            self.refuse_yanked(version, pinned=True)
        return Response(self.get_serializer(version).data)

    def create(self, request, *args, **kwargs) -> Response:
        self.require("change")
        serializer = VersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        manifest = fields.pop("manifest", None)
        if manifest is not None and not fields.get("label"):
            fields["label"] = _label_from_manifest(manifest)
        with transaction.atomic():
            model = self.lock_model("change")
            version = services.create_version(model=model, actor=request.user, **fields)
            if manifest is not None:  # in the same transaction: a refused gpux.yml leaves no version behind
                import_manifest(version=version, text=manifest, actor=request.user)
        return self._answer(version, 201)

    def partial_update(self, request, *args, **kwargs) -> Response:
        version = self.get_object()
        serializer = VersionUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            self.lock_model("change")
            version = services.update_version(version=version, actor=request.user, **serializer.validated_data)
        return self._answer(version)

    @action(detail=True, methods=["post"], restrict_action="change")
    def publish(self, request, *args, **kwargs) -> Response:
        version = self.get_object()
        with transaction.atomic():
            self.lock_model("change")
            version = services.publish_version(version=version, actor=request.user)
        return self._answer(version)

    @action(detail=True, methods=["post"], restrict_action="change")
    def deprecate(self, request, *args, **kwargs) -> Response:
        version = self.get_object()
        serializer = DeprecateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            self.lock_model("change")
            version = services.deprecate_version(version=version, actor=request.user, **serializer.validated_data)
        return self._answer(version)

    @action(detail=True, methods=["post"], restrict_action="delete")
    def yank(self, request, *args, **kwargs) -> Response:
        version = self.get_object()
        serializer = YankSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            self.lock_model("delete")
            version = services.yank_version(version=version, actor=request.user, **serializer.validated_data)
        return self._answer(version)

    @action(detail=True, methods=["post"], restrict_action="change")
    def validate(self, request, *args, **kwargs) -> Response:
        version = self.get_object()
        if not version.is_draft:
            raise exceptions.ValidationError(
                {"status": [f"Version “{version.label}” is {version.status}; only drafts are validated."]}
            )
        job = services.request_validation(version=version, actor=request.user)
        if job is None:
            raise exceptions.ValidationError(
                {"files": ["Upload the ONNX model file first (validation is not available without one)."]}
            )
        return self._answer(version, 202)


# -- gpux.yml -------------------------------------------------------------------------------------------------------
MANIFEST_MEDIA_TYPE = "application/yaml; charset=utf-8"
MANIFEST_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
MANIFEST_BODY_LIMIT = Limits.max_manifest_bytes  # a gpux.yml sent as itself
MANIFEST_JSON_BODY_LIMIT = 4 * Limits.max_manifest_bytes  # inside JSON, where escapes make it longer


def _manifest_refusal(exc: ManifestError) -> exceptions.ValidationError:
    return exceptions.ValidationError({"manifest": exc.errors}, code="invalid_manifest")


def _label_from_manifest(text: str) -> str:
    """The label of a version created from a gpux.yml: its ``version``, which must be there and be a label."""
    try:
        raw = load_yaml(text)
        manifest = validate_manifest(raw)
    except ManifestError as exc:
        raise _manifest_refusal(exc) from exc
    if raw.get("version") is None:
        raise exceptions.ValidationError(
            {"manifest": ["version: this field is required to label the new version (or send a label)."]},
            code="required",
        )
    label = manifest["version"]
    try:
        validate_version_label(label)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(
            {"manifest": [f"version: “{label}” cannot label a version. {' '.join(exc.messages)}"]},
            code="invalid_label",
        ) from exc
    return label


class ManifestRefused(exceptions.APIException):
    """A refusal of the gpux.yml routes that is not a 400 (409: cannot be exported yet; 413: too large); the body
    also names the field it concerns, as a 400 would."""

    def __init__(self, detail: str, *, field: str, code: str, status_code: int) -> None:
        super().__init__(detail, code)
        self.status_code = status_code
        self.field = field

    def add_to(self, response) -> None:
        if isinstance(response.data, dict):
            response.data[self.field] = [str(self.detail)]


def _manifest_too_large(limit: int) -> ManifestRefused:
    return ManifestRefused(
        f"The body is larger than {limit} bytes: a gpux.yml may be at most {MANIFEST_BODY_LIMIT} bytes.",
        field="manifest",
        code="manifest_too_large",
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


@extend_schema(tags=["model versions"], parameters=[OWNER, NAME, LABEL])
class VersionManifestView(ModelLookupMixin, AnyContentMixin, APIView):
    """``/models/{owner}/{name}/versions/{label}/manifest``: GET exports a gpux.yml that the GPUX CLI runs (from the
    version's signature and files, keeping what an imported gpux.yml said); PUT imports one into a draft
    (members), replacing its ``gpux.yml``. The stored file itself is ``files/gpux.yml``."""

    parser_classes: list = []  # the body is read here, bounded: a gpux.yml is small

    def get_restrict_action(self) -> str:
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, ManifestRefused):
            exc.add_to(response)
        return response

    @extend_schema(
        summary="The version's gpux.yml for the GPUX CLI (once its validation passed)",
        responses={
            (200, "application/yaml"): OpenApiTypes.STR,
            404: OpenApiResponse(description="No such version, or you may not view the model."),
            409: OpenApiResponse(description="Not validated yet, or no ONNX model file: the body names the field."),
            410: OpenApiResponse(description="The version was yanked."),
        },
    )
    def get(self, request, owner: str, name: str, label: str) -> HttpResponse:
        version = self.version_by_label(label)
        self.refuse_yanked(version, pinned=True)
        try:
            text = export_version_manifest(version)
        except DjangoValidationError as exc:
            field, errors = next(iter(exc.error_dict.items()))
            raise ManifestRefused(
                " ".join(message for error in errors for message in error.messages),
                field=field,
                code=errors[0].code or "not_exportable",
                status_code=status.HTTP_409_CONFLICT,
            ) from exc
        response = HttpResponse(text.encode("utf-8"), content_type=MANIFEST_MEDIA_TYPE)
        response["Content-Disposition"] = 'attachment; filename="gpux.yml"'
        response["Cache-Control"] = _cache_control(version, immutable=False)  # the model's card and tags may change
        return response

    @extend_schema(
        summary="Import a gpux.yml into a draft (members): checked field by field and against the model",
        request={
            "application/yaml": OpenApiTypes.STR,
            "text/yaml": OpenApiTypes.STR,
            "text/plain": OpenApiTypes.STR,
            "application/json": ManifestImportSerializer,
        },
        responses={
            200: VersionFileSerializer,
            201: VersionFileSerializer,
            400: OpenApiResponse(description="A bad gpux.yml (each field named by its path), or not a draft."),
            413: OpenApiResponse(description="Larger than a gpux.yml may be (256 KiB)."),
            415: OpenApiResponse(description="Neither YAML, plain text nor JSON."),
        },
    )
    def put(self, request, owner: str, name: str, label: str) -> Response:
        self.require("change")
        version = self.version_by_label(label)
        services._refuse_unless_draft(version, "import a gpux.yml into it")
        text = self._read_manifest(request)
        replacing = version.files.filter(path=MANIFEST_PATH).exists()
        with transaction.atomic():
            self.lock_model("change")
            if replacing:
                # The old gpux.yml goes first; the new one is still checked against the model's signature (``version``
                # keeps it) before it is stored, and a refusal rolls the removal back with everything else.
                services.remove_file(version=version, actor=request.user, path=MANIFEST_PATH)
            version_file = import_manifest(version=version, text=text, actor=request.user)
        data = VersionFileSerializer(version_file, context={"request": request}).data
        return Response(data, status=status.HTTP_200_OK if replacing else status.HTTP_201_CREATED)

    def _read_manifest(self, request) -> bytes | str:
        """The gpux.yml of the body, read with a size cap: YAML (or plain text) as is, or JSON ``{"manifest"}``."""
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        is_json = content_type == "application/json"
        if not is_json and content_type not in MANIFEST_YAML_TYPES:
            raise exceptions.UnsupportedMediaType(
                content_type,
                detail=f"Send the gpux.yml as application/yaml (or text/yaml, text/plain), or as JSON "
                f'{{"manifest": "..."}}; not {content_type or "a body without Content-Type"}.',
            )
        limit = MANIFEST_JSON_BODY_LIMIT if is_json else MANIFEST_BODY_LIMIT
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > limit:
            raise _manifest_too_large(limit)  # refused before reading
        body = request._request.read(limit + 1)
        if len(body) > limit:
            raise _manifest_too_large(limit)
        if not body.strip():
            raise exceptions.ValidationError({"manifest": ["Send the gpux.yml as the request body."]}, code="required")
        if not is_json:
            return body  # bytes: the parser says which byte is not UTF-8
        try:
            envelope = json.loads(body)
        except ValueError as exc:
            raise exceptions.ValidationError(
                {"manifest": [f"The body is not valid JSON: {exc}"]}, code="parse_error"
            ) from exc
        if not isinstance(envelope, dict):
            raise exceptions.ValidationError(
                {"manifest": ['Send JSON {"manifest": "<the gpux.yml text>"}.']}, code="invalid"
            )
        serializer = ManifestImportSerializer(data=envelope)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["manifest"]


# -- files ----------------------------------------------------------------------------------------------------------
def _cache_control(version: ModelVersion, *, immutable: bool) -> str:
    audience = (
        "public"
        if version.model.visibility == Visibility.PUBLIC and version.status != VersionStatus.YANKED
        else "private"
    )
    if immutable and version.is_frozen:
        return f"{audience}, max-age={IMMUTABLE_MAX_AGE}, immutable"
    return f"{audience}, no-cache"


class UpstreamFailed(exceptions.APIException):
    status_code = 502
    default_code = "upstream_failed"
    default_detail = "The file's registry could not deliver it."


class DownloadMixin(AnyContentMixin):
    """Serve a version's file through downloads.serve_blob, writing a usage event per answer."""

    def fetch_missing(self, version: ModelVersion, path: str) -> VersionFile:
        """A file the version lists upstream only (a synced model in metadata mode): fetched now, or 404/502."""
        try:
            version_file = downloads.fetch_missing_file(version, path)
        except downloads.FileSourceFailed as exc:
            raise UpstreamFailed(f"The file is not cached yet and its registry could not deliver it: {exc}") from exc
        if version_file is None:
            raise Http404("No such file in this version.")
        return VersionFile.objects.select_related("blob", "version").get(pk=version_file.pk)

    def send_file(
        self,
        request,
        version: ModelVersion,
        version_file: VersionFile,
        *,
        route: str,
        immutable: bool,
        actor: Any = None,
    ):
        actor = actor if actor is not None else request.user
        delivery = downloads.Delivery(
            blob=version_file.blob,
            filename=downloads.basename(version_file.path),
            cache_control=_cache_control(version, immutable=immutable),
        )

        def served(status_code: int, sent: int) -> None:
            if request.method == "HEAD" or status_code == 416:
                return
            record_usage(
                kind=UsageKind.DOWNLOAD,
                organization=version.model.organization_id,
                subject=version,
                actor=actor,
                subject_label=f"{version.model}@{version.label}",
                path=version_file.path,
                blob_sha256=version_file.blob.sha256,
                bytes_sent=sent if status_code != 304 else 0,
                status_code=status_code,
                metadata={"route": route, "range": request.headers.get("Range", "")[:200]},
            )

        return downloads.serve_blob(request, delivery, on_served=served)


@extend_schema(tags=["model files"], parameters=[OWNER, NAME, LABEL])
@extend_schema_view(
    list=extend_schema(summary="A version's files"),
    create=extend_schema(
        summary="Upload a (small) file to a draft as multipart form data (members); large ones: upload sessions",
        request={"multipart/form-data": FileUploadSerializer},
        responses={201: VersionFileSerializer, 413: OpenApiResponse(description="Over the storage quota.")},
    ),
)
class VersionFileViewSet(ModelLookupMixin, viewsets.GenericViewSet):
    """``/models/{owner}/{name}/versions/{label}/files/``."""

    serializer_class = VersionFileSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    pagination_class = None
    filter_backends: list = []
    queryset = VersionFile.objects.none()

    def get_restrict_action(self) -> str | None:
        return {"list": "view", "create": "change"}.get(getattr(self, "action", None) or "")

    @property
    def version(self) -> ModelVersion:
        if not hasattr(self, "_version"):
            self._version = self.version_by_label(self.kwargs["label"])
        return self._version

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return VersionFile.objects.none()
        return VersionFile.objects.filter(version=self.version).select_related("blob", "version__model__organization")

    def list(self, request, *args, **kwargs) -> Response:
        if not self.may("change"):
            self.refuse_yanked(self.version, pinned=True)
        return Response(self.get_serializer(self.get_queryset(), many=True).data)

    def create(self, request, *args, **kwargs) -> Response:
        self.require("change")
        version = self.version
        services._refuse_unless_draft(version, "add files")
        organization = self.catalog_model.organization
        declared = (request.query_params.get("sha256") or "").lower()
        if declared and not SHA256_PATTERN.match(declared):
            raise exceptions.ValidationError({"sha256": ["Give the SHA-256 as 64 hexadecimal characters."]})
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and not (declared and storage.organization_references(organization, declared)):
            # Before the body is read: the request's Content-Length bounds the file's size.
            storage.check_quota(organization, size=int(length))
        serializer = FileUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        uploaded = serializer.validated_data["file"]
        path = serializer.validated_data.get("path") or uploaded.name
        version_file = services.add_file(
            version=version,
            actor=request.user,
            path=path,
            uploaded=uploaded,
            role=serializer.validated_data.get("role"),
            declared_sha256=(serializer.validated_data.get("sha256") or declared or "").lower() or None,
        )
        return Response(self.get_serializer(version_file).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["model files"],
    summary="Download a version's file (ETag, Range, 304; yanked versions: 410 unless pinned and used before)",
    parameters=[OWNER, NAME, LABEL, FILE_PATH, RANGE, IF_NONE_MATCH],
    responses=BINARY_RESPONSES,
)
class VersionFileDownloadView(ModelLookupMixin, DownloadMixin, APIView):
    """GET/HEAD ``/models/{owner}/{name}/versions/{label}/files/{path}``; DELETE removes it from a draft."""

    def get_restrict_action(self) -> str:
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def get(self, request, owner: str, name: str, label: str, path: str):
        # The hot path of every client: the model through restrict(), then version, file and blob in one query.
        version_file = (
            VersionFile.objects.select_related("blob", "version")
            .filter(version__model=self.catalog_model, version__label=label, path=path)
            .first()
        )
        if version_file is None:
            version_file = self.fetch_missing(self.version_by_label(label), path)
        version = version_file.version
        version.model = self.catalog_model
        self.refuse_yanked(version, pinned=True)
        return self.send_file(request, version, version_file, route="version", immutable=True)

    def head(self, request, *args, **kwargs):
        return self.get(request, *args, **kwargs)

    @extend_schema(summary="Remove a file from a draft (members)", responses={204: None})
    def delete(self, request, owner: str, name: str, label: str, path: str) -> Response:
        self.require("change")
        version = self.version_by_label(label)
        get_object_or_404(version.files.all(), path=path)
        with transaction.atomic():
            self.lock_model("change")
            services.remove_file(version=version, actor=request.user, path=path)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    tags=["model files"],
    summary="A signed, expiring download link for a file (for a CDN, a script or another machine)",
    parameters=[OWNER, NAME, LABEL, FILE_PATH],
    responses={200: SignedLinkSerializer},
)
class VersionFileLinkView(ModelLookupMixin, APIView):
    """GET ``/models/{owner}/{name}/versions/{label}/links/{path}``: a URL that works without a token until it
    expires (``SIGNED_DOWNLOAD_URL_TTL_SECONDS``); with ``DOWNLOAD_OFFLOAD = "storage-url"`` the storage's own
    (e.g. presigned S3) URL."""

    def get(self, request, owner: str, name: str, label: str, path: str) -> Response:
        version = self.version_by_label(label)
        self.refuse_yanked(version, pinned=True)
        version_file = get_object_or_404(version.files.select_related("blob"), path=path)
        blob = version_file.blob
        ttl = settings.SIGNED_DOWNLOAD_URL_TTL_SECONDS
        if getattr(settings, "DOWNLOAD_OFFLOAD", "") == "storage-url":
            url = request.build_absolute_uri(downloads.storage_url(blob, downloads.basename(version_file.path)))
        else:
            token = downloads.sign_blob_access(blob=blob, user=request.user, version=version, path=version_file.path)
            url = request.build_absolute_uri(reverse("api:model-blob-download", kwargs={"sha256": blob.sha256}))
            url = f"{url}?token={token}"
        data = {
            "url": url,
            "expires_at": timezone.now() + timedelta(seconds=ttl),
            "sha256": blob.sha256,
            "size": blob.size,
        }
        return Response(SignedLinkSerializer(data).data)


@extend_schema(
    tags=["model files"],
    summary="Download by content address (a signed token, or a version you may view that holds these bytes)",
    parameters=[SHA256, TOKEN, RANGE, IF_NONE_MATCH],
    responses={**BINARY_RESPONSES, 403: OpenApiResponse(description="The signed token expired or is not valid.")},
)
class BlobDownloadView(DownloadMixin, CatalogErrorsMixin, APIView):
    """GET/HEAD ``/blobs/sha256/{sha256}``: content-addressed, so cacheable forever (``immutable``)."""

    def get_restrict_action(self) -> str:
        return "view"

    def get(self, request, sha256: str):
        token = request.query_params.get("token")
        actor = None
        if token:
            try:
                access = downloads.check_blob_access(token, sha256=sha256)
            except downloads.SignatureInvalid as exc:
                raise exceptions.PermissionDenied(str(exc), code=exc.code) from exc
            version = (
                ModelVersion.objects.filter(uuid=access.version_uuid, model__deleted_at__isnull=True)
                .select_related("model__organization")
                .first()
            )
            if version is None:
                raise Http404
            if access.user_id is not None:
                from django.contrib.auth import get_user_model

                actor = get_user_model().objects.filter(pk=access.user_id).first()
            if version.status == VersionStatus.YANKED and not has_used(actor=actor, subject=version):
                # Yanked after the link was made: the yank rule applies to the link's user.
                raise VersionYanked(f"Version “{version.label}” of {version.model} was yanked: {version.yank_reason}")
            route = "signed"
        else:
            version = (
                ModelVersion.objects.restrict(request.user, "view", within_organization=bound_organization_id(request))
                .filter(files__blob__sha256=sha256)
                .exclude(status=VersionStatus.YANKED)
                .select_related("model__organization")
                .order_by("-created_at")
                .first()
            )
            if version is None:
                raise Http404
            route = "blob"
        version_file = version.files.select_related("blob").filter(blob__sha256=sha256).order_by("path").first()
        if version_file is None:
            raise Http404
        if token and access.path and version_file.path != access.path:
            version_file = (
                version.files.select_related("blob").filter(blob__sha256=sha256, path=access.path).first()
                or version_file
            )
        return self.send_file(request, version, version_file, route=route, immutable=True, actor=actor)

    def head(self, request, *args, **kwargs):
        return self.get(request, *args, **kwargs)


# -- aliases --------------------------------------------------------------------------------------------------------
@extend_schema(tags=["model aliases"], parameters=[OWNER, NAME])
class AliasListView(ModelLookupMixin, APIView):
    """GET the model's aliases; PUT ``{name, version}`` points one at a published version (members)."""

    def get_restrict_action(self) -> str:
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def _aliases(self):
        return (
            Alias.objects.filter(model=self.catalog_model).select_related("version").prefetch_related("changes__actor")
        )

    @extend_schema(summary="A model's aliases and their history", responses={200: AliasSerializer(many=True)})
    def get(self, request, owner: str, name: str) -> Response:
        return Response(AliasSerializer(self._aliases(), many=True).data)

    @extend_schema(
        summary="Point an alias at a version (members)", request=AliasSetSerializer, responses={200: AliasSerializer}
    )
    def put(self, request, owner: str, name: str) -> Response:
        self.require("change")
        serializer = AliasSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        label = serializer.validated_data["version"]
        version = self.versions().filter(label=label).first()
        if version is None:
            raise exceptions.ValidationError({"version": [f"{self.catalog_model} has no version “{label}”."]})
        with transaction.atomic():
            model = self.lock_model("change")
            alias = services.set_alias(
                model=model, actor=request.user, name=serializer.validated_data["name"], version=version
            )
        return Response(AliasSerializer(self._aliases().get(pk=alias.pk)).data)


@extend_schema(
    tags=["model aliases"],
    parameters=[OWNER, NAME, ALIAS],
    summary="An alias and its history",
    responses={200: AliasSerializer},
)
class AliasDetailView(ModelLookupMixin, APIView):
    def get_restrict_action(self) -> str:
        return "view"

    def get(self, request, owner: str, name: str, alias: str) -> Response:
        found = get_object_or_404(
            Alias.objects.filter(model=self.catalog_model).select_related("version").prefetch_related("changes__actor"),
            name=alias,
        )
        return Response(AliasSerializer(found).data)


@extend_schema(
    tags=["model aliases"],
    summary="Download a file of the version an alias points at (revalidate: the alias moves)",
    parameters=[OWNER, NAME, ALIAS, FILE_PATH, RANGE, IF_NONE_MATCH],
    responses=BINARY_RESPONSES,
)
class AliasFileDownloadView(ModelLookupMixin, DownloadMixin, APIView):
    def get_restrict_action(self) -> str:
        return "view"

    def get(self, request, owner: str, name: str, alias: str, path: str):
        found = get_object_or_404(Alias.objects.filter(model=self.catalog_model).select_related("version"), name=alias)
        version = self.version_by_label(found.version.label)
        self.refuse_yanked(version, pinned=False)
        version_file = version.files.select_related("blob").filter(path=path).first()
        if version_file is None:
            version_file = self.fetch_missing(version, path)
        return self.send_file(request, version, version_file, route="alias", immutable=False)

    def head(self, request, *args, **kwargs):
        return self.get(request, *args, **kwargs)


# -- uploads --------------------------------------------------------------------------------------------------------
@extend_schema(
    tags=["model uploads"],
    summary="Start a resumable upload into a draft (members): the declared size is checked against the quota",
    parameters=[OWNER, NAME, LABEL],
    request=UploadSessionCreateSerializer,
    responses={201: UploadSessionSerializer, 413: OpenApiResponse(description="Over the storage quota.")},
)
class UploadSessionCreateView(ModelLookupMixin, APIView):
    """POST starts a resumable upload; GET lists the version's open ones (to resume after losing their URL)."""

    def get_restrict_action(self) -> str:
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    @extend_schema(
        summary="A draft's open upload sessions (members), to resume one",
        request=None,
        responses={200: UploadSessionSerializer(many=True)},
    )
    def get(self, request, owner: str, name: str, label: str) -> Response:
        self.require("change")
        version = self.version_by_label(label)
        sessions = UploadSession.objects.filter(
            version=version, status__in=LIVE_UPLOAD_STATUSES, expires_at__gt=timezone.now()
        ).select_related("version__model__organization", "file__blob", "job")
        return Response(UploadSessionSerializer(sessions, many=True, context={"request": request}).data)

    def post(self, request, owner: str, name: str, label: str) -> Response:
        self.require("change")
        version = self.version_by_label(label)
        serializer = UploadSessionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = uploads.create_upload_session(version=version, actor=request.user, **serializer.validated_data)
        data = UploadSessionSerializer(session, context={"request": request}).data
        return Response(
            data,
            status=status.HTTP_201_CREATED,
            headers={"Location": data["upload_url"], "Upload-Offset": str(session.offset)},
        )


class UploadSessionMixin(CatalogErrorsMixin):
    """Routes under ``/uploads/{uuid}/``: the session's model must be viewable (404) and changeable (403)."""

    def get_restrict_action(self) -> str:
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def session(self, uuid: Any) -> UploadSession:
        session = get_object_or_404(
            UploadSession.objects.select_related("version__model__organization", "file__blob", "job"), uuid=uuid
        )
        bound = bound_organization_id(self.request)
        versions = ModelVersion.objects.filter(pk=session.version_id)
        if not versions.restrict(self.request.user, "view", within_organization=bound).exists():
            raise Http404
        if not versions.restrict(self.request.user, "change", within_organization=bound).exists():
            raise exceptions.PermissionDenied("You may view this model but not upload to it.")
        return session

    def answer(self, session: UploadSession, status_code: int = 200) -> Response:
        data = UploadSessionSerializer(session, context={"request": self.request}).data
        headers = {
            "Upload-Offset": str(session.offset),
            "Upload-Length": str(session.size),
            "Cache-Control": "no-store",
        }
        return Response(data, status=status_code, headers=headers)


@extend_schema(tags=["model uploads"], parameters=[UPLOAD_UUID])
class UploadSessionView(UploadSessionMixin, AnyContentMixin, APIView):
    """GET/HEAD: the offset to resume from; PATCH: a chunk at ``Upload-Offset``; DELETE: abort."""

    parser_classes: list = []  # the body is read as a stream, never parsed

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, UploadOffsetMismatch):
            exc.add_to(response)
        return response

    def shown(self, uuid: Any) -> UploadSession:
        session = self.session(uuid)
        uploads.reopen_if_job_ended(session=session)  # a verifying session whose job died shows ``open`` with its error
        return session

    @extend_schema(summary="An upload session and the offset to resume from", responses={200: UploadSessionSerializer})
    def get(self, request, uuid) -> Response:
        return self.answer(self.shown(uuid))

    def head(self, request, uuid) -> Response:
        response = self.answer(self.shown(uuid))
        return response

    @extend_schema(
        summary="Send a chunk at the session's offset (Upload-Offset header or ?offset=)",
        parameters=[UPLOAD_OFFSET],
        request={
            "application/offset+octet-stream": OpenApiTypes.BINARY,
            "application/octet-stream": OpenApiTypes.BINARY,
        },
        responses={
            200: UploadSessionSerializer,
            409: OpenApiResponse(description="Wrong offset: the body names the expected one."),
            410: OpenApiResponse(description="The session expired, was aborted or completed."),
        },
    )
    def patch(self, request, uuid) -> Response:
        session = self.session(uuid)
        raw = request.headers.get("Upload-Offset", request.query_params.get("offset"))
        if raw is None:
            raise exceptions.ValidationError({"offset": ["Send the chunk's offset in the Upload-Offset header."]})
        offset = uploads.parse_offset(raw)
        length_header = request.META.get("CONTENT_LENGTH") or ""
        length = int(length_header) if length_header.isdigit() else None
        # The body is read straight from the WSGI stream in 1 MiB pieces: it is never held in memory.
        session = uploads.write_chunk(session=session, offset=offset, stream=request._request, length=length)
        return self.answer(session)

    @extend_schema(summary="Abort an upload", responses={204: None})
    def delete(self, request, uuid) -> Response:
        uploads.abort_upload_session(session=self.session(uuid), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    tags=["model uploads"],
    summary="Finish an upload: size and SHA-256 are verified, then the file joins the version",
    description="Up to MARKETPLACE_SYNC_COMPLETE_MAX_BYTES (256 MiB by default) the bytes are verified in the "
    "request: 201 with the file. Above it a job verifies them: 202 with the session (status ``verifying``, "
    "``job.url`` to poll); asking again while it runs answers the same job.",
    parameters=[UPLOAD_UUID],
    request=None,
    responses={
        201: VersionFileSerializer,
        202: UploadSessionSerializer,
        400: OpenApiResponse(description="Size or SHA-256 mismatch: nothing stored."),
    },
)
class UploadSessionCompleteView(UploadSessionMixin, APIView):
    def post(self, request, uuid) -> Response:
        session = self.session(uuid)
        outcome = uploads.complete_upload_session(session=session, actor=request.user)
        if isinstance(outcome, Job):
            session.refresh_from_db()
            response = self.answer(session, status.HTTP_202_ACCEPTED)
            response["Location"] = response.data["job"]["url"]
            return response
        return Response(VersionFileSerializer(outcome, context={"request": request}).data, status=201)
