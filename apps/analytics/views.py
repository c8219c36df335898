"""The live monitoring pages: operations (staff) and an organization's (its admins). Each page loads once; its
live part is a fragment that htmx fetches again every few seconds, with the charts' data in a JSON script that
static/portal/dashboards.js draws with the vendored Chart.js."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView
from rest_framework.exceptions import ValidationError

from apps.analytics import dashboards, quotas, reports
from apps.analytics.models import TokenKind, UsageEvent, UsageKind
from apps.core.jobs import Job
from apps.core.mixins import OrganizationPageMixin

REFRESH_SECONDS = 5


def _staff_only(request: HttpRequest) -> HttpResponse | None:
    """Anonymous: the sign-in page; signed in but not staff: 404 (the page does not exist for them)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not (request.user.is_active and request.user.is_staff):
        raise Http404("No such page.")
    return None


def operations(request: HttpRequest) -> HttpResponse:
    """/operations/: queues, workers, latency, errors, throughput, GPUs, slowest models, recent failures."""
    refused = _staff_only(request)
    if refused is not None:
        return refused
    return render(request, "analytics/operations.html", {"refresh": REFRESH_SECONDS})


def operations_live(request: HttpRequest) -> HttpResponse:
    """The fragment the operations page polls."""
    refused = _staff_only(request)
    if refused is not None:
        return refused
    context = {"overview": dashboards.operations_overview(), "refresh": REFRESH_SECONDS}
    return render(request, "analytics/_operations_live.html", context)


class OrganizationMonitoringView(OrganizationPageMixin, TemplateView):
    """/orgs/<slug>/monitoring/: the organization's jobs and predictions, for those who see all its jobs (admins)."""

    template_name = "analytics/organization.html"
    required_role = Job.access.role_for("view")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["refresh"] = REFRESH_SECONDS
        return context


class OrganizationMonitoringLiveView(OrganizationMonitoringView):
    template_name = "analytics/_organization_live.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["overview"] = dashboards.organization_overview(self.organization)
        return context


# --- usage analytics and quotas ----------------------------------------------------------------------------------


class UsagePageMixin(OrganizationPageMixin):
    """The organization's admins see its usage; bad period, granularity or filter answer 400 naming the field."""

    required_role = UsageEvent.access.role_for("view")

    def subject(self) -> dict[str, Any]:
        return {"organization_id": self.organization.pk}

    def title(self) -> str:
        return f"Usage of {self.organization.slug}"

    def subject_label(self) -> str:
        """What the page is about, in a sentence (its empty state)."""
        return f"the organization {self.organization.slug}"

    def export_name(self) -> str:
        return self.organization.slug

    def export_url(self) -> str:
        return reverse("org-analytics-export", kwargs={"org_slug": self.organization.slug})

    def build_report(self) -> dict[str, Any]:
        period = reports.parse_period(self.request.GET)
        filters = reports.parse_filters(self.request.GET)
        self.period = period
        return reports.usage_report(period=period, filters=filters, **self.subject())


class OrganizationUsageView(UsagePageMixin, TemplateView):
    """/orgs/<slug>/analytics/: runs, downloads, users, latency and errors over a chosen period, with links to the
    organization's models and bound tokens, its quotas, and the export."""

    template_name = "analytics/usage.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            report = self.build_report()
        except ValidationError as exc:
            context = self.get_context_data(errors=exc.detail, report=None)
            return self.render_to_response(context, status=400)
        return self.render_to_response(self.get_context_data(report=report))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("format", None)
        context.update(
            title=self.title(),
            subject_label=self.subject_label(),
            periods=list(reports.PERIODS),
            kinds=UsageKind.choices,
            token_kinds=[("none", "no token"), *[(value, label) for value, label in TokenKind.choices if value]],
            selected=self.request.GET,
            query=query.urlencode(),
            export_url=self.export_url(),
            chart_data=kwargs.get("report"),
            period_start=getattr(getattr(self, "period", None), "start", None),
            period_end=getattr(getattr(self, "period", None), "end", None),
            is_organization_page=type(self) is OrganizationUsageView,
        )
        if context["is_organization_page"]:
            from apps.accounts.models import ApiToken
            from apps.marketplace.models import Model

            context["models"] = Model.objects.filter(organization=self.organization).order_by("name")[:200]
            context["tokens"] = ApiToken.objects.filter(organization=self.organization).select_related("user")[:200]
            context["quotas"] = quotas.quota_overview(self.organization)
        return context


class ModelUsageView(OrganizationUsageView):
    """/orgs/<slug>/analytics/models/<name>/: one of the organization's models, used by anyone (counts only)."""

    @property
    def model(self):
        from apps.marketplace.models import Model

        if not hasattr(self, "_model"):
            self._model = get_object_or_404(
                Model.objects.filter(organization=self.organization), name=self.kwargs["name"]
            )
        return self._model

    def subject(self) -> dict[str, Any]:
        return {"model_id": self.model.pk}

    def title(self) -> str:
        return f"Usage of the model {self.organization.slug}/{self.model.name}"

    def subject_label(self) -> str:
        return f"the model {self.organization.slug}/{self.model.name}"

    def export_name(self) -> str:
        return f"{self.organization.slug}-{self.model.name}"

    def export_url(self) -> str:
        return reverse(
            "org-analytics-model-export", kwargs={"org_slug": self.organization.slug, "name": self.model.name}
        )


class TokenUsageView(OrganizationUsageView):
    """/orgs/<slug>/analytics/tokens/<uuid>/: a token bound to the organization."""

    @property
    def token(self):
        from apps.accounts.models import ApiToken

        if not hasattr(self, "_token"):
            self._token = get_object_or_404(
                ApiToken.objects.filter(organization=self.organization).select_related("user"), uuid=self.kwargs["uuid"]
            )
        return self._token

    def subject(self) -> dict[str, Any]:
        return {"organization_id": self.organization.pk, "token_id": self.token.pk}

    def title(self) -> str:
        token = self.token
        return f"Usage of the token “{token.name}” ({token.prefix}…, {token.get_kind_display()}) of {token.user.handle}"

    def subject_label(self) -> str:
        return f"the token “{self.token.name}” ({self.token.prefix}…)"

    def export_name(self) -> str:
        return f"{self.organization.slug}-token-{self.token.prefix}"

    def export_url(self) -> str:
        return reverse(
            "org-analytics-token-export", kwargs={"org_slug": self.organization.slug, "uuid": self.token.uuid}
        )


def _export(view: UsagePageMixin) -> HttpResponse:
    try:
        answer_format = reports.parse_format(view.request.GET, default="csv")
        report = view.build_report()
    except ValidationError as exc:
        return JsonResponse(exc.detail, status=400)
    report["subject"] = view.export_name()
    stamp = f"{view.period.start:%Y%m%d}-{view.period.end:%Y%m%d}"
    if answer_format == "csv":
        response = HttpResponse(reports.report_csv(report), content_type="text/csv; charset=utf-8")
    else:
        response = JsonResponse(report)
    response["Content-Disposition"] = f'attachment; filename="{view.export_name()}-usage-{stamp}.{answer_format}"'
    response["Cache-Control"] = "no-store"
    return response


class OrganizationUsageExportView(UsagePageMixin, View):
    """The page's series as a file: ``?format=csv`` (default) or ``json``, with the page's period and filters."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return _export(self)


class ModelUsageExportView(ModelUsageView):
    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return _export(self)


class TokenUsageExportView(TokenUsageView):
    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return _export(self)


class QuotasView(OrganizationPageMixin, TemplateView):
    """/orgs/<slug>/quotas/: each limit of the organization, what is used of it and how close it is."""

    template_name = "analytics/quotas.html"
    required_role = UsageEvent.access.role_for("view")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["plan"] = quotas.limits_for(self.organization.pk).plan
        context["quotas"] = quotas.quota_overview(self.organization)
        return context
