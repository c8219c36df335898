"""The organization's audit trail: list (filtered, ordered, paginated) and a streamed CSV / JSON lines export.

Only the organization's admins and owners see it (DESIGN.md's role table); a token needs the admin scope.
Who cannot view the organization at all gets 404, a viewer or member 403.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, filters, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer

from apps.accounts.models import TokenScope
from apps.audit.api.serializers import AuditEventSerializer
from apps.audit.exports import FORMATS, batched, iter_export_lines
from apps.audit.filtersets import AuditEventFilterSet
from apps.audit.models import AuditEvent
from apps.audit.services import record_event
from apps.core.api.views import OrganizationNestedMixin
from apps.core.lookup import AUDIT

EXPORT_ACTION = "audit.exported"


@extend_schema_view(
    list=extend_schema(
        summary="List the organization's audit events",
        description="Admins and owners of the organization only; a token needs the admin scope. "
        "Newest first by default (`ordering=-seq`).",
        tags=["audit"],
    ),
)
@extend_schema(
    parameters=[
        OpenApiParameter("org_slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The organization's slug.")
    ]
)
class OrganizationAuditEventViewSet(OrganizationNestedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """``/api/v1/orgs/{org_slug}/audit/`` and ``.../audit/export/?format=csv|jsonl``."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    filter_backends = [DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["created_at", "seq"]
    ordering = ["-seq"]
    requires_signed_in = True
    scope_for_action = {"view": TokenScope.ADMIN}

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        # 404 when the caller may not view the organization, then 403 unless they may read its audit trail (admins).
        self.require_organization_action(AUDIT)

    def get_queryset(self):
        return AuditEvent.objects.filter(organization=self.organization).select_related("actor")

    def perform_content_negotiation(self, request, force: bool = False):
        # ``format`` names the export's file format here, not a DRF renderer; errors are answered in JSON.
        if getattr(self, "action", None) == "export":
            return JSONRenderer(), JSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        summary="Export the organization's audit events (streamed)",
        description="The same filters and ordering as the list (oldest first unless `ordering` is given), "
        "without pagination, streamed as a file download. CSV has a header row, `diff` and `metadata` as JSON "
        "text, and cells that a spreadsheet would run as a formula prefixed with `'`; JSON lines has one object "
        "per line, verbatim.",
        tags=["audit"],
        filters=True,
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=list(FORMATS),
                default="csv",
                description="The file format: `csv` or `jsonl` (JSON lines).",
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV file"),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, description="JSON lines file"),
        },
    )
    @action(detail=False, methods=["get"], url_path="export", pagination_class=None)
    def export(self, request, *args, **kwargs) -> StreamingHttpResponse:
        export_format = request.query_params.get("format", "csv").strip().lower() or "csv"
        if export_format not in FORMATS:
            raise exceptions.ValidationError(
                {"format": [f"Unknown export format “{export_format}”: use one of {', '.join(FORMATS)}."]},
                code="invalid_choice",
            )
        queryset = self.filter_queryset(self.get_queryset())
        if not request.query_params.get("ordering"):
            queryset = queryset.order_by("seq")  # a file reads oldest first, as the chain runs
        record_event(
            action=EXPORT_ACTION,
            organization=self.organization,
            actor=request.user,
            metadata={"format": export_format, "filters": self._filters_used()},
        )
        content_type, extension = FORMATS[export_format]
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(
            batched(iter_export_lines(queryset, export_format=export_format)), content_type=content_type
        )
        response["Content-Disposition"] = f'attachment; filename="{self.organization.slug}-audit-{stamp}.{extension}"'
        response["Cache-Control"] = "no-store"
        return response

    def _filters_used(self) -> dict[str, str]:
        names = [*AuditEventFilterSet.base_filters, "ordering"]
        return {name: self.request.query_params[name][:200] for name in names if self.request.query_params.get(name)}
