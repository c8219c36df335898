"""Registry pages: an organization's admins add registries, test them, sync them and read each run's history.

/orgs/<org_slug>/registries/                                 org-registries           the list
/orgs/<org_slug>/registries/new/                             org-registry-create      pick a backend, then its form
/orgs/<org_slug>/registries/<registry_slug>/                 org-registry             status, progress, history
/orgs/<org_slug>/registries/<registry_slug>/edit/            org-registry-edit        the form again
/orgs/<org_slug>/registries/<registry_slug>/sync/            org-registry-sync        POST: start a sync
/orgs/<org_slug>/registries/<registry_slug>/check/           org-registry-check       POST: test the connection
/orgs/<org_slug>/registries/<registry_slug>/delete/          org-registry-delete      POST {confirm_slug}
/orgs/<org_slug>/registries/<registry_slug>/access/          org-registry-access      POST: grant (its Access panel)
/orgs/<org_slug>/registries/<registry_slug>/access/revoke/   org-registry-access-revoke POST: revoke a grant
/orgs/<org_slug>/registries/<registry_slug>/syncs/<sync_id>/ org-registry-sync-detail one run and its errors
/orgs/<org_slug>/registries/<registry_slug>/syncs/<sync_id>/live/ org-registry-sync-live its live part (htmx)
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from apps.core import lookup
from apps.core.access import CHANGE, DELETE, VIEW, Role
from apps.core.forms import add_service_errors
from apps.core.mixins import paginate
from apps.organizations.access_panel import access_panel_context, access_views
from apps.organizations.views import OrganizationAction, OrganizationPage
from apps.registries import services
from apps.registries.forms import RegistryForm, service_error_aliases
from apps.registries.models import Registry, RegistrySync
from apps.registries.sdk import available_backends, backend_class
from apps.registries.sdk.discovery import broken_plugins

ADMIN = Registry.access.role_for("view")


def _shown(value: Any) -> Any:
    return ", ".join(str(item) for item in value) if isinstance(value, list) else value


def describe_sync_jobs(rows: list[dict[str, Any]], user: Any) -> None:
    """The jobs pages' describer for registry syncs: the registry's name, and the sync's own page for those who may
    read it (the organization's admins)."""
    mine = {row["job"].pk: row for row in rows if row["job"].kind == services.SYNC_KIND}
    if not mine:
        return
    syncs = RegistrySync.objects.filter(job_id__in=mine).select_related("registry__organization")
    readable = set(RegistrySync.objects.restrict(user, "view").filter(job_id__in=mine).values_list("pk", flat=True))
    for sync in syncs:
        row = mine[sync.job_id]
        row["subject"] = f"registry {sync.registry.name}"
        if sync.pk in readable:
            registry = sync.registry
            row["url"] = reverse("org-registry-sync-detail", args=[registry.organization.slug, registry.slug, sync.pk])
            row["subject_url"] = reverse("org-registry", args=[registry.organization.slug, registry.slug])


class RegistryPageMixin:
    """Resolves ``self.registry`` of the page's organization through restrict() (404 when not viewable).

    A registry's pages are its organization's admins', and also of whoever restrict() lets take the page's
    ``registry_action`` on it (a grant of view or change, from its Access panel); anyone else gets the admins' 403.
    """

    registry_action = VIEW

    @property
    def required_role(self) -> Role | None:
        granted = Registry.objects.restrict(self.request.user, self.registry_action).filter(
            organization=self.organization, slug=self.kwargs.get("registry_slug")
        )
        return None if granted.exists() else ADMIN

    def may(self, action: str) -> bool:
        return lookup.allows(self.get_registry(), self.request.user, action)

    def get_registry(self) -> Registry:
        if not hasattr(self, "_registry"):
            self._registry = lookup.find_allowed(
                Registry.objects.filter(organization=self.organization).select_related("last_sync__job"),
                self.request.user,
                slug=self.kwargs["registry_slug"],
            )
        return self._registry


class RegistryListView(OrganizationPage):
    template_name = "registries/list.html"
    required_role = ADMIN

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        registries = (
            Registry.objects.restrict(self.request.user, "view")
            .filter(organization=self.organization)
            .select_related("last_sync__job")
            .annotate(model_count=Count("links"))
            .order_by("slug")
        )
        query = self.request.GET.get("q", "").strip()
        if query:
            registries = registries.filter(Q(name__icontains=query) | Q(slug__icontains=query))
        context["page_obj"] = paginate(self.request, registries)
        context["query"] = query
        return context


class RegistryCreateView(OrganizationPage):
    template_name = "registries/form.html"
    required_role = ADMIN

    def backend(self):
        name = self.request.GET.get("backend") or self.request.POST.get("backend") or ""
        return name, backend_class(name) if name else None

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        name, backend = self.backend()
        context["backends"] = [cls.describe() for cls in available_backends().values()]
        context["broken_plugins"] = broken_plugins()
        context["backend_name"] = name
        context["backend"] = backend
        if backend is not None:
            context.setdefault("form", RegistryForm(backend=backend))
        return context

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        name, backend = self.backend()
        if name and backend is None:
            messages.error(request, f"“{name[:60]}” is not an installed backend; choose one below.")
            return self.render_page(status=400)
        return self.render_page()

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        name, backend = self.backend()
        if backend is None:
            messages.error(request, "Choose a backend first.")
            return self.render_page(status=400)
        form = RegistryForm(request.POST, backend=backend)
        if form.is_valid():
            try:
                registry = services.create_registry(
                    organization=self.organization, actor=request.user, backend=name, **form.service_arguments()
                )
            except ValidationError as exc:
                add_service_errors(form, exc, aliases=service_error_aliases(backend))
            else:
                messages.success(request, f"Registry “{registry.name}” added. Test its connection, then sync it.")
                return redirect("org-registry", self.organization.slug, registry.slug)
        return self.render_page(status=400, form=form)


class RegistryDetailView(RegistryPageMixin, OrganizationPage):
    template_name = "registries/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        registry = self.get_registry()
        backend = backend_class(registry.backend)
        context["registry"] = registry
        context["backend"] = backend
        context["parameters"] = [
            {
                "label": parameter.title,
                "sensitive": parameter.sensitive,
                "value": _shown(registry.config.get(parameter.name)),
                "set": bool(registry.credentials) and parameter.sensitive,
            }
            for parameter in (backend.parameters if backend else ())
            if parameter.name not in backend.presets
        ]
        syncs = RegistrySync.objects.filter(registry=registry).select_related("job", "job__creator")
        context["page_obj"] = paginate(self.request, syncs, per_page=10)
        context["active"] = services.active_sync(registry)
        context["model_count"] = registry.links.count()
        context["removed_count"] = registry.links.filter(removed_upstream_at__isnull=False).count()
        context["may_change"] = self.may(CHANGE)
        context["may_delete"] = self.may(DELETE)
        slugs = [self.organization.slug, registry.slug]
        context.update(
            access_panel_context(
                self.request,
                registry,
                grant_url=reverse("org-registry-access", args=slugs),
                revoke_url=reverse("org-registry-access-revoke", args=slugs),
            )
        )
        return context


class RegistryEditView(RegistryPageMixin, OrganizationPage):
    template_name = "registries/form.html"
    registry_action = CHANGE

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        registry = self.get_registry()
        backend = backend_class(registry.backend)
        if backend is None:
            raise Http404(f"The backend “{registry.backend}” is not installed.")
        context.update(registry=registry, backend=backend, backend_name=registry.backend)
        context.setdefault("form", RegistryForm(backend=backend, registry=registry))
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        registry = self.get_registry()
        backend = backend_class(registry.backend)
        if backend is None:
            raise Http404(f"The backend “{registry.backend}” is not installed.")
        form = RegistryForm(request.POST, backend=backend, registry=registry)
        if form.is_valid():
            arguments = form.service_arguments()
            try:
                services.update_registry(
                    registry=registry, actor=request.user, config=arguments.pop("config"), **arguments
                )
            except ValidationError as exc:
                add_service_errors(form, exc, aliases=service_error_aliases(backend))
            else:
                messages.success(request, "Registry saved.")
                return redirect("org-registry", self.organization.slug, registry.slug)
        return self.render_page(status=400, form=form)


class RegistryAction(RegistryPageMixin, OrganizationAction):
    registry_action = CHANGE

    def next_url(self) -> str:
        return reverse("org-registry", args=[self.organization.slug, self.get_registry().slug])


class RegistrySyncStartView(RegistryAction):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            services.start_sync(registry=self.get_registry(), actor=request.user)
        except services.SyncAlreadyRunning as exc:
            messages.info(request, f"{exc} Its progress is below.")
        else:
            messages.success(request, "Sync started: its progress is below.")
        return self.back()


class RegistryCheckView(RegistryAction):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        ok, message = services.check_connection(registry=self.get_registry(), actor=request.user)
        (messages.success if ok else messages.error)(request, message)
        return self.back()


class RegistryDeleteView(RegistryAction):
    registry_action = DELETE

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        registry = self.get_registry()
        if request.POST.get("confirm_slug") != registry.slug:
            messages.error(request, f"Type the registry's slug, “{registry.slug}”, to delete it.")
            return self.back()
        services.delete_registry(registry=registry, actor=request.user)
        messages.success(request, f"Registry “{registry.name}” deleted; the models it synced stay in the catalog.")
        return HttpResponseRedirect(reverse("org-registries", args=[self.organization.slug]))


class RegistrySyncDetailView(RegistryPageMixin, OrganizationPage):
    """One sync: who or what started it, when, how long it ran, its totals (read from the sync's own row, so the
    counts and the progress never disagree) and its per-model errors; while it runs, ``org-registry-sync-live``
    answers the live part again every second."""

    template_name = "registries/sync_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        registry = self.get_registry()
        context["registry"] = registry
        context["sync"] = get_object_or_404(
            RegistrySync.objects.restrict(self.request.user, "view")
            .filter(registry=registry)
            .select_related("job", "job__creator"),
            pk=self.kwargs["sync_id"],
        )
        return context


class RegistrySyncLiveFragment(RegistrySyncDetailView):
    """The live part of a sync's page (progress, totals, timing), which htmx polls while the sync runs."""

    template_name = "registries/_sync_live.html"


def _registry_url(registry: Registry) -> str:
    return reverse("org-registry", args=[registry.organization.slug, registry.slug])


RegistryGrantView, RegistryRevokeView = access_views(
    model=Registry,
    lookup=lambda org_slug, registry_slug, **rest: {"organization__slug": org_slug, "slug": registry_slug},
    url_of=_registry_url,
)
