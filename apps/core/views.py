"""The dashboard, the jobs pages, the health check and the Prometheus metrics."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from apps.core.access import organization_model
from apps.core.mixins import (
    OrganizationPageMixin,
    gate_redirect,
    get_allowed_or_403,
    get_viewable_or_404,
    paginate,
)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and `make run`.

    Its ``SELECT 1`` is the connection's health check (the backend's own, a poll of the socket, is skipped), and a
    connection found dead is replaced and asked once more."""
    from django.db import DatabaseError

    for attempt in (1, 2):
        connection.health_check_done = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            break
        except DatabaseError:
            connection.close()
            if attempt == 2:
                raise
    return JsonResponse({"status": "ok"})


def metrics(request: HttpRequest) -> HttpResponse:
    """/metrics: the web processes' metrics and the cluster-wide families, for the operator's Prometheus only
    (``METRICS_BEARER_TOKEN`` or ``METRICS_ALLOWED_NETWORKS``; docs/operator/monitoring.md). Anyone else: 404, or 403
    for a wrong token."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from apps.core import metrics as portal_metrics

    header = getattr(settings, "TRUSTED_PROXY_HEADER", None)
    forwarded = request.META.get(header, "") if header else ""
    client = forwarded.split(",")[0].strip() or request.META.get("REMOTE_ADDR")
    refusal = portal_metrics.scrape_refusal(request.headers.get("Authorization"), client)
    if refusal is not None:
        text = "Forbidden.\n" if refusal == 403 else "Not found.\n"
        return HttpResponse(text, status=refusal, content_type="text/plain")
    body = portal_metrics.render(portal_metrics.exposition_registry(cluster=True))
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico: the portal's icon (a static SVG, hashed in production: resolved per request, not at import)."""
    return HttpResponsePermanentRedirect(static("portal/favicon.svg"))


def home(request: HttpRequest) -> HttpResponse:
    """Signed in: the dashboard (my organizations, my recent jobs). Anonymous: what the portal is."""
    if not request.user.is_authenticated:
        return render(request, "core/landing.html")
    from apps.core.jobs import Job

    user = request.user
    organizations = (
        organization_model()
        .objects.restrict(user, "view")
        .filter(memberships__user=user)
        .order_by("-is_personal", "slug")
    )
    jobs = Job.objects.restrict(user, "view").filter(creator=user).select_related("organization")[:5]
    context = {"page_obj": paginate(request, organizations, per_page=12), "jobs": jobs}
    return render(request, "core/dashboard.html", context)


def _job_for(request: HttpRequest, uuid: Any):
    from apps.core.jobs import Job

    return get_viewable_or_404(Job.objects.select_related("organization", "creator"), request.user, uuid=uuid)


def _may_cancel(request: HttpRequest, job: Any) -> bool:
    from apps.core.jobs import Job

    return not job.is_finished and Job.objects.restrict(request.user, "cancel").filter(pk=job.pk).exists()


def job_detail(request: HttpRequest, uuid: Any) -> HttpResponse:
    """/jobs/<uuid>/: a job's state, with a progress bar that htmx refreshes until the job finishes."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    job = _job_for(request, uuid)
    mfa = gate_redirect(request, job.organization)
    if mfa is not None:
        return mfa
    # The creator of a job counted against an organization they may not view (their run of another organization's
    # public deployment) sees the job, not that organization's name.
    from apps.core.job_services import describe_jobs

    viewable = organization_model().objects.restrict(request.user, "view").filter(pk=job.organization_id).exists()
    context = {
        "job": job,
        "row": describe_jobs([job], request.user)[0],
        # A batch job's rows, file and provider are on its page already (templates/core/_job_progress.html).
        "result_facts": [] if job.kind == "inference.batch" else result_facts(job.result),
        "organization": job.organization if viewable else None,
        "may_cancel": _may_cancel(request, job),
    }
    return render(request, "core/job_detail.html", context)


# Result keys that name where the server keeps things (or what a worker read): never shown on a page.
_INTERNAL_RESULT_KEYS = ("output", "file", "files", "path", "main_file", "cursor", "traceback")


def result_facts(result: Any) -> list[tuple[str, str]]:
    """A job's result as a few readable facts (its top-level numbers, words and yes/no), never raw JSON nor a
    server path: nested values, long texts and keys that name files are left out (a download link offers those)."""
    from apps.core.templatetags.portal import human_duration

    if not isinstance(result, dict):
        return []
    facts = []
    for key, value in result.items():
        if key in _INTERNAL_RESULT_KEYS or key.endswith(("_path", "_file")) or isinstance(value, dict | list):
            continue
        if value is None or (isinstance(value, str) and (len(value) > 120 or "/" in value)):
            continue
        label = str(key).replace("_", " ").capitalize()
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif key in ("seconds", "total_ms", "ms") and isinstance(value, int | float):
            text = human_duration(value / 1000 if key.endswith("ms") else value)
            label = "Time"
        elif isinstance(value, float):
            text = f"{value:,.4g}"
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = str(value)
        facts.append((label, text))
    return facts[:12]


def job_progress(request: HttpRequest, uuid: Any) -> HttpResponse:
    """The progress fragment htmx polls (the same lookup as the page). Polled with ``?reload=1`` (the job's own
    page), the answer that says the job finished tells htmx to reload the page."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    job = _job_for(request, uuid)
    if gate_redirect(request, job.organization) is not None:
        return HttpResponse(status=403)
    reload_when_done = request.GET.get("reload") == "1"
    context = {"job": job, "may_cancel": _may_cancel(request, job), "reload_when_done": reload_when_done}
    response = render(request, "core/_job_progress.html", context)
    if reload_when_done and job.is_finished and request.headers.get("HX-Request"):
        # The job's page shows more than this fragment (when it finished, what it found): read it all again.
        response["HX-Refresh"] = "true"
    return response


@require_POST
def job_cancel(request: HttpRequest, uuid: Any) -> HttpResponse:
    """POST /jobs/<uuid>/cancel/: its creator or an admin of its organization cancels a queued or running job.

    From htmx (the button in the progress fragment) it answers the fragment; otherwise it goes back to the page.
    """
    from apps.core.job_services import cancel_job
    from apps.core.jobs import Job

    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    job = get_allowed_or_403(Job.objects.select_related("organization", "creator"), request.user, "cancel", uuid=uuid)
    mfa = gate_redirect(request, job.organization)
    if mfa is not None:
        return mfa
    with transaction.atomic():
        # Re-checked with the row locked: a membership that ended meanwhile refuses (403, nothing written).
        locked = get_allowed_or_403(Job.objects.select_for_update(of=("self",)), request.user, "cancel", uuid=uuid)
        cancelled = cancel_job(job=locked, actor=request.user)
    job.refresh_from_db()
    if request.headers.get("HX-Request"):
        return render(request, "core/_job_progress.html", {"job": job, "may_cancel": False})
    if cancelled:
        messages.success(request, "The job was cancelled.")
    else:
        messages.info(request, f"The job had already {job.status}; nothing to cancel.")
    return redirect("job-detail", uuid=job.uuid)


class JobsView(OrganizationPageMixin, TemplateView):
    """/orgs/<slug>/jobs/: the organization's jobs the caller may see (their own; admins: all), every kind in one
    list with a select for the kind and one for the status, each job named by what it is ("Validation") and what
    it ran on, with its progress and duration."""

    template_name = "core/jobs.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from apps.core.filtersets import JobPageFilterSet
        from apps.core.job_services import describe_jobs
        from apps.core.jobs import Job

        context = super().get_context_data(**kwargs)
        jobs = (
            Job.objects.restrict(self.request.user, "view")
            .filter(organization=self.organization)
            .select_related("organization", "creator")
        )
        filterset = JobPageFilterSet(self.request.GET or None, queryset=jobs)
        valid = not filterset.is_bound or filterset.is_valid()
        page = paginate(self.request, (filterset.qs if valid else jobs.none()).order_by("-created_at", "-id"))
        page.object_list = describe_jobs(list(page.object_list), self.request.user)
        context["filter"] = filterset
        context["page_obj"] = page
        context["filtering"] = any(self.request.GET.get(key) for key in ("status", "kind"))
        return context

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = self.get_context_data(**kwargs)
        status = 400 if context["filter"].is_bound and not context["filter"].is_valid() else 200
        return self.render_to_response(context, status=status)
