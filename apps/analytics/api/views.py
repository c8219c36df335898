"""The usage API: an organization's usage, a model's and a token's (from the rollups), and the organization's quotas.

Admins and owners of the organization only, as its pages; who cannot view the organization gets 404, a member or
viewer 403. ``format=csv`` answers the series as a CSV file; bad parameters answer 400 naming the parameter.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import ApiToken, TokenScope
from apps.analytics import quotas, reports
from apps.core.access import Role
from apps.core.api.views import OrganizationNestedMixin

ORG_SLUG = OpenApiParameter("org_slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The organization.")
REPORT_PARAMETERS = [
    ORG_SLUG,
    OpenApiParameter("period", OpenApiTypes.STR, enum=list(reports.PERIODS), description="Default 30d."),
    OpenApiParameter("start", OpenApiTypes.DATE, description="First day (UTC), instead of period."),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day (UTC, included); default today."),
    OpenApiParameter("granularity", OpenApiTypes.STR, enum=["hour", "day"], description="Default by period."),
    OpenApiParameter("kind", OpenApiTypes.STR, description="download, prediction, job, batch_rows, ..."),
    OpenApiParameter("token_kind", OpenApiTypes.STR, enum=["personal", "ci", "service", "none"]),
    OpenApiParameter("format", OpenApiTypes.STR, enum=list(reports.FORMATS), description="json (default) or csv."),
]
REPORT_RESPONSES = {
    200: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="period, buckets, series (users: distinct signed-in users per bucket), totals (users: distinct "
        "signed-in users over the whole period), by_kind, by_token_kind, definitions",
    ),
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="One row per bucket."),
    400: OpenApiResponse(description="A parameter is wrong; the error names it."),
}


class OrganizationAdminView(OrganizationNestedMixin, APIView):
    requires_signed_in = True
    scope_for_action = {"view": TokenScope.READ}

    def get_restrict_action(self) -> str:
        return "view"

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self.require_role(Role.ADMIN)  # 404 when the organization is not viewable, then 403 below admin

    def perform_content_negotiation(self, request, force: bool = False):
        # ``format`` names the answer's format here (json or csv), not a DRF renderer; errors are JSON.
        return JSONRenderer(), JSONRenderer.media_type


class UsageReportView(OrganizationAdminView):
    """``GET /api/v1/orgs/{org_slug}/usage/``: the organization's own usage (what counts against it)."""

    def subject(self) -> dict:
        return {"organization_id": self.organization.pk}

    def filename(self) -> str:
        return self.organization.slug

    @extend_schema(summary="Usage of the organization, a model or a token (from the rollups)",
                   parameters=REPORT_PARAMETERS, responses=REPORT_RESPONSES, tags=["analytics"])  # fmt: skip
    def get(self, request, *args, **kwargs):
        answer_format = reports.parse_format(request.query_params)
        period = reports.parse_period(request.query_params)
        filters = reports.parse_filters(request.query_params)
        report = reports.usage_report(period=period, filters=filters, **self.subject())
        report["subject"] = self.filename()
        if answer_format == "csv":
            response = HttpResponse(reports.report_csv(report), content_type="text/csv; charset=utf-8")
            name = f"{self.filename().replace('/', '-')}-usage-{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            response["Cache-Control"] = "no-store"
            return response
        return Response(report)


class ModelUsageReportView(UsageReportView):
    """``GET /api/v1/orgs/{org_slug}/usage/models/{name}/``: the use of one of the organization's models by anyone
    (counts only, no names of who used it)."""

    def subject(self) -> dict:
        from apps.marketplace.models import Model

        self.model = get_object_or_404(Model.objects.filter(organization=self.organization), name=self.kwargs["name"])
        return {"model_id": self.model.pk}

    def filename(self) -> str:
        return f"{self.organization.slug}/{self.kwargs['name']}"


class TokenUsageReportView(UsageReportView):
    """``GET /api/v1/orgs/{org_slug}/usage/tokens/{uuid}/``: the use of a token bound to the organization."""

    def subject(self) -> dict:
        token = get_object_or_404(ApiToken.objects.filter(organization=self.organization), uuid=self.kwargs["uuid"])
        return {"organization_id": self.organization.pk, "token_id": token.pk}

    def filename(self) -> str:
        return f"{self.organization.slug}-token-{self.kwargs['uuid']}"


class QuotaView(OrganizationAdminView):
    """``GET /api/v1/orgs/{org_slug}/quotas/``: each limit, what is used of it now and how close it is (percent)."""

    @extend_schema(summary="The organization's quotas and how close each is", parameters=[ORG_SLUG],
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT)}, tags=["analytics"])  # fmt: skip
    def get(self, request, *args, **kwargs):
        limits = quotas.limits_for(self.organization.pk)
        return Response({"plan": limits.plan or None, "quotas": quotas.quota_overview(self.organization)})
