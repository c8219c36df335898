"""A version's files: list, upload (small ones as multipart), download (ETag, Range), signed links, and
downloads by content address."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analytics.services import has_used
from apps.core.api.parsers import JSONParser
from apps.core.api.views import bound_organization_id
from apps.marketplace import downloads, services, storage
from apps.marketplace.api.mixins import CatalogErrorsMixin, DownloadMixin, ModelLookupMixin
from apps.marketplace.api.schema import (
    BINARY_RESPONSES,
    FILE_PATH,
    IF_NONE_MATCH,
    LABEL,
    NAME,
    OWNER,
    RANGE,
    SHA256,
    TOKEN,
)
from apps.marketplace.api.serializers import FileUploadSerializer, SignedLinkSerializer, VersionFileSerializer
from apps.marketplace.exceptions import VersionYanked
from apps.marketplace.models import SHA256_PATTERN, ModelVersion, VersionFile, VersionStatus


@extend_schema(tags=["model files"], parameters=[OWNER, NAME, LABEL])
@extend_schema_view(
    list=extend_schema(summary="A version's files"),
    create=extend_schema(
        summary="Upload a (small) file to a draft as multipart form data (members); large ones: upload sessions",
        request={"multipart/form-data": FileUploadSerializer},
        responses={201: VersionFileSerializer, 403: OpenApiResponse(description="Over the storage quota.")},
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
        self.hide_draft(version)
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
