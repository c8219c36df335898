"""The catalog API: models, versions and aliases (files: files.py, uploads: uploads.py, gpux.yml: manifest.py).

restrict() decides (apps/core/api/views.py): a model the caller may not view answers 404, and so do its
versions, files and uploads; viewable but not allowed answers 403. Roles (docs/api/models.md): viewers read
and download; members create models and versions, upload, publish, deprecate and move aliases; admins delete
models and yank versions. Token scopes: ``read`` for reading and downloading, ``write`` for every change.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import OuterRef, Prefetch, Subquery
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.access import Role
from apps.core.api.views import (
    OrganizationNestedMixin,
    RestrictedModelViewSet,
    RestrictedViewSetMixin,
    bound_organization_id,
)
from apps.core.lookup import CREATE_IN
from apps.marketplace import services, storage
from apps.marketplace.api.manifest import label_from_manifest
from apps.marketplace.api.mixins import CatalogErrorsMixin, DownloadMixin, ModelLookupMixin
from apps.marketplace.api.schema import (
    ALIAS,
    BINARY_RESPONSES,
    FILE_PATH,
    IF_NONE_MATCH,
    LABEL,
    NAME,
    ORG_SLUG,
    OWNER,
    RANGE,
)
from apps.marketplace.api.serializers import (
    AliasSerializer,
    AliasSetSerializer,
    DeprecateSerializer,
    ModelCreateSerializer,
    ModelDetailSerializer,
    ModelSerializer,
    ModelUpdateSerializer,
    StorageUsageSerializer,
    VersionCreateSerializer,
    VersionSerializer,
    VersionUpdateSerializer,
    YankSerializer,
)
from apps.marketplace.filtersets import ModelFilterSet, OrganizationModelFilterSet, VersionFilterSet
from apps.marketplace.models import Alias, Model, ModelVersion, VersionFile, VersionStatus
from apps.marketplace.validation import import_manifest


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
        self.require_organization_action(CREATE_IN)
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
            fields["label"] = label_from_manifest(manifest)
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
