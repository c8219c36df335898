"""Resumable uploads into a draft: start one, send chunks at an offset, finish (verified), abort."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.jobs import Job
from apps.marketplace import uploads
from apps.marketplace.api.mixins import AnyContentMixin, ModelLookupMixin, UploadSessionMixin
from apps.marketplace.api.schema import LABEL, NAME, OWNER, UPLOAD_OFFSET, UPLOAD_UUID
from apps.marketplace.api.serializers import (
    UploadSessionCreateSerializer,
    UploadSessionSerializer,
    VersionFileSerializer,
)
from apps.marketplace.exceptions import UploadOffsetMismatch
from apps.marketplace.models import LIVE_UPLOAD_STATUSES, UploadSession


@extend_schema(
    tags=["model uploads"],
    summary="Start a resumable upload into a draft (members): the declared size is checked against the quota",
    parameters=[OWNER, NAME, LABEL],
    request=UploadSessionCreateSerializer,
    responses={201: UploadSessionSerializer, 403: OpenApiResponse(description="Over the storage quota.")},
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
