"""The live monitoring pages: operations (staff) and an organization's (its admins). Each page loads once; its
live part is a fragment that htmx fetches again every few seconds, with the charts' data in a JSON script that
static/portal/dashboards.js draws with the vendored Chart.js."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic import TemplateView

from apps.analytics import dashboards
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
