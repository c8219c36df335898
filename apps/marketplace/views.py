"""Catalog pages: the catalog, a model's page, a version's page, creating and editing, the upload page and the
version actions (publish, deprecate, yank, validate, remove a file).

Every model is fetched through ``restrict()``: one the caller may not view answers 404 (an anonymous caller is
sent to sign in instead, which tells nothing); viewable but not allowed answers 403. Changes are service calls,
re-checked with the model locked inside the transaction; a service's refusal is shown on the form (400) or as a
message. Yanked versions follow the API's rule: hidden from those who may not change the model, unless they
downloaded that exact version before.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views import View
from django.views.generic import TemplateView

from apps.analytics.services import has_used
from apps.core import lookup
from apps.core.forms import add_service_errors
from apps.core.lookup import CREATE_IN
from apps.core.mixins import OrganizationPageMixin, gate_redirect, get_viewable_or_404, paginate
from apps.marketplace import services
from apps.marketplace.extensions import version_panels_context
from apps.marketplace.filtersets import UPLOADED, ModelFilterSet
from apps.marketplace.forms import DeprecateForm, ModelCreateForm, ModelEditForm, VersionCreateForm, YankForm
from apps.marketplace.markdown import render_markdown
from apps.marketplace.models import (
    Alias,
    FileRole,
    Model,
    ModelVersion,
    VersionFile,
    VersionStatus,
)
from apps.marketplace.onnx.task_detection import TASKS
from apps.organizations.access_panel import access_panel_context, access_views

# The upload page sends files above this size through a resumable upload session, in chunks of CHUNK_SIZE;
# operators (and tests) may change both with the settings of the same names prefixed MARKETPLACE_PAGE_UPLOAD_.
SMALL_FILE_LIMIT = 32 * 1024 * 1024
CHUNK_SIZE = 8 * 1024 * 1024
SORTS = {"name": ("organization__slug", "name"), "updated": ("-updated_at", "name"), "new": ("-created_at", "name")}
LISTED_STATUSES = (VersionStatus.PUBLISHED, VersionStatus.DEPRECATED)


def _messages_from(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for messages_ in error.message_dict.values() for message in messages_]
    return list(error.messages)


def _latest_published_label() -> Subquery:
    published = ModelVersion.objects.filter(model=OuterRef("pk"), status__in=LISTED_STATUSES).order_by(
        "-published_at", "-id"
    )
    return Subquery(published.values("label")[:1])


# -- the catalog ----------------------------------------------------------------------------------------------------
def catalog(request: HttpRequest) -> HttpResponse:
    """/models/: the models the caller may view, searched (``q``) and filtered by task, license, owner, tags."""
    context, status = catalog_listing(request, Model.objects.restrict(request.user, "view"))
    context["creatable_in"] = _organizations_to_create_in(request.user)
    return render(request, "marketplace/catalog.html", context, status=status)


def catalog_listing(request: HttpRequest, visible: QuerySet) -> tuple[dict[str, Any], int]:
    """The catalog's filters, facets and page of results over ``visible`` (models restrict() already allowed), and
    the status to answer (400 when a filter is invalid): for the catalog and for an organization's Models tab."""
    models = visible.select_related("organization").annotate(latest_version_label=_latest_published_label())
    filterset = ModelFilterSet(request.GET or None, queryset=models)
    sort = request.GET.get("sort") if request.GET.get("sort") in SORTS else "updated"
    valid = not filterset.is_bound or filterset.is_valid()
    results = filterset.qs.order_by(*SORTS[sort]) if valid else models.none()
    facets = {
        "tasks": sorted(set(visible.exclude(task="").values_list("task", flat=True).distinct()[:100])),
        "licenses": sorted(set(visible.exclude(license="").values_list("license", flat=True).distinct()[:100])),
        "owners": sorted(set(visible.values_list("organization__slug", flat=True).distinct()[:200])),
        "sources": _source_facet(visible),
    }
    filtering = any(request.GET.get(key) for key in ("q", "task", "license", "owner", "tags", "visibility", "source"))
    context = {
        "filter": filterset,
        "page_obj": paginate(request, results, per_page=20),
        "facets": facets,
        "sort": sort,
        "filtering": filtering,
    }
    return context, 200 if valid else 400


def _source_facet(visible: Any) -> list[tuple[str, int]]:
    """Where the visible models come from, with counts: each registry (by slug) and the portal's own uploads."""
    rows = visible.order_by().values("source_registry").annotate(count=Count("id")).order_by("-count")[:50]
    return [(row["source_registry"] or UPLOADED, row["count"]) for row in rows]


def _organizations_to_create_in(user: Any) -> list:
    """The organizations the user may create models in (members and up), for the "New model" button."""
    if not user.is_authenticated:
        return []
    from apps.core.access import Role
    from apps.organizations.models import Organization

    return list(
        Organization.objects.restrict(user, "view")
        .filter(memberships__user=user, memberships__role__gte=Model.access.role_for("change") or Role.MEMBER)
        .order_by("-is_personal", "slug")
    )


# -- an organization's models ----------------------------------------------------------------------------------------
class OrganizationModelsView(OrganizationPageMixin, TemplateView):
    """/orgs/<slug>/models/: the organization's models the caller may view, with the catalog's search and filters,
    and "New model" for those who may create one there (members and up)."""

    template_name = "marketplace/organization_models.html"
    allow_anonymous = True

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        visible = Model.objects.restrict(request.user, "view").filter(organization=self.organization)
        listing, status = catalog_listing(request, visible)
        context = self.get_context_data(**listing)
        context["may_create"] = self.has_role(Model.access.role_for("change"))
        return self.render_to_response(context, status=status)


# -- creating a model -----------------------------------------------------------------------------------------------
class ModelCreateView(OrganizationPageMixin, TemplateView):
    """/orgs/<slug>/models/new/: members and up create a model in the organization."""

    template_name = "marketplace/model_form.html"
    organization_action = CREATE_IN  # members (Organization.access)

    def render_form(self, form: ModelCreateForm, status: int = 200) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form, creating=True, tasks=TASKS), status=status)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render_form(ModelCreateForm())

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = ModelCreateForm(request.POST)
        if form.is_valid():
            try:
                model = services.create_model(organization=self.organization, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Model {model} created. Start its first version and upload the files.")
                return HttpResponseRedirect(
                    reverse("catalog-version-create", args=[model.organization.slug, model.name])
                )
        return self.render_form(form, status=400)


# -- pages about one model ------------------------------------------------------------------------------------------
class ModelPageMixin:
    """Resolves ``/models/<owner>/<name>/`` through restrict(): 404 if not viewable (anonymous: sign in first),
    403 unless ``model_action`` is allowed. Anonymous callers may only read (GET) what is public."""

    model_action = "view"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        anonymous = not request.user.is_authenticated
        if anonymous and (self.model_action != "view" or request.method not in ("GET", "HEAD")):
            return redirect_to_login(request.get_full_path())
        try:
            self.catalog_model = get_viewable_or_404(
                Model.objects.select_related("organization"),
                request.user,
                organization__slug=kwargs["owner"],
                name=kwargs["name"],
            )
        except Http404:
            if anonymous:
                return redirect_to_login(request.get_full_path())
            raise
        if not anonymous:
            redirect = gate_redirect(request, self.catalog_model.organization)
            if redirect is not None:
                return redirect
        if not self.may(self.model_action):
            lookup.refuse(self.catalog_model, self.model_action, message="You may view {obj} but not {action} it.")
        return super().dispatch(request, *args, **kwargs)

    def may(self, action: str) -> bool:
        cache = self.__dict__.setdefault("_may", {})
        if action not in cache:
            cache[action] = lookup.allows(self.catalog_model, self.request.user, action)
        return cache[action]

    def lock_model(self, action: str) -> Model:
        """Inside a transaction: the model locked, if the caller may still ``action`` it (403 otherwise)."""
        return lookup.lock_allowed(
            Model.objects.all(),
            self.catalog_model,
            self.request.user,
            action,
            message="You may no longer {action} {obj}.",
        )

    def versions(self) -> QuerySet:
        """The versions the caller is shown: yanked ones only to those who may change the model."""
        versions = ModelVersion.objects.restrict(self.request.user, "view").filter(model=self.catalog_model)
        if not self.may("change"):
            versions = versions.exclude(status=VersionStatus.YANKED)
        return versions.select_related("created_by").prefetch_related(
            Prefetch("files", VersionFile.objects.select_related("blob")), "aliases"
        )

    def version_by_label(self, label: str) -> ModelVersion:
        return lookup.find_allowed(
            ModelVersion.objects.filter(model=self.catalog_model).select_related(
                "model__organization", "validation_job", "created_by"
            ),
            self.request.user,
            label=label,
        )

    def yanked_for_caller(self, version: ModelVersion) -> bool:
        """The yank rule of the API: hidden unless the caller may change the model or downloaded this version."""
        if version.status != VersionStatus.YANKED or self.may("change"):
            return False
        return not has_used(actor=self.request.user, subject=version)

    def model_context(self) -> dict[str, Any]:
        model = self.catalog_model
        return {
            "model": model,
            "organization": model.organization,
            "may_change": self.may("change"),
            "may_delete": self.may("delete"),
            "card_html": mark_safe(render_markdown(model.card)),  # noqa: S308 -- sanitized by nh3 in render_markdown
        }

    def version_context(self, version: ModelVersion) -> dict[str, Any]:
        """Files, signature, ONNX facts, validation and how to use ``version``."""
        files = list(version.files.select_related("blob").order_by("path"))
        model = self.catalog_model
        owner, name, label = model.organization.slug, model.name, version.label
        for version_file in files:
            version_file.download_url = reverse(
                "api:model-version-file-detail",
                kwargs={"owner": owner, "name": name, "label": label, "path": version_file.path},
            )
        # A model synced in metadata mode lists files its registry still holds (the registries app's RemoteFile):
        # shown with the same download link, which fetches the file on its first use.
        upstream_files = getattr(version, "remote_files", None)
        upstream = list(upstream_files.filter(fetched_at=None).order_by("path")) if upstream_files is not None else []
        for remote in upstream:
            remote.download_url = reverse(
                "api:model-version-file-detail",
                kwargs={"owner": owner, "name": name, "label": label, "path": remote.path},
            )
        main = next((f for f in files if f.path == "model.onnx"), None) or next(
            (f for f in files if f.role == FileRole.MODEL), None
        )
        manifest, manifest_problem = "", ""
        if version.signature and main is not None:
            from apps.marketplace.validation import export_version_manifest

            try:
                manifest = export_version_manifest(version)
            except ValidationError as exc:
                manifest_problem = " ".join(_messages_from(exc))
        api_root = self.request.build_absolute_uri(reverse("api:model-list")).removesuffix("models/")
        return {
            "version": version,
            "files": files,
            "upstream_files": upstream,
            "main_file": main,
            "signature": version.signature or {},
            "onnx_info": version.onnx_info or {},
            "changelog_html": mark_safe(render_markdown(version.changelog)),  # noqa: S308 -- sanitized by nh3
            "manifest": manifest,
            "manifest_problem": manifest_problem,
            "api_root": api_root.rstrip("/"),
            "file_paths": [f.path for f in files],
            "yanked_but_pinned": version.status == VersionStatus.YANKED and not self.may("change"),
        }


class ModelView(ModelPageMixin, TemplateView):
    """/models/<owner>/<name>/: the card, versions, files, signature and how to use the current version."""

    template_name = "marketplace/model_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(self.model_context())
        versions = list(self.versions())
        context["versions"] = versions
        current = next((v for v in versions if v.status in LISTED_STATUSES), None)
        if current is None and self.may("change"):
            current = next((v for v in versions if v.status == VersionStatus.DRAFT), None)
        context["current"] = current
        if current is not None:
            context.update(self.version_context(current))
        context.update(version_panels_context(self.request, current, may_run=self.may("run")))
        context["aliases"] = (
            Alias.objects.filter(model=self.catalog_model)
            .exclude(version__status=VersionStatus.YANKED)
            .select_related("version")
        )
        owner, name = self.catalog_model.organization.slug, self.catalog_model.name
        context.update(
            access_panel_context(
                self.request,
                self.catalog_model,
                grant_url=reverse("catalog-model-access", args=[owner, name]),
                revoke_url=reverse("catalog-model-access-revoke", args=[owner, name]),
            )
        )
        return context


class VersionView(ModelPageMixin, TemplateView):
    """/models/<owner>/<name>/versions/<label>/: one version; its actions for those who may take them."""

    template_name = "marketplace/version_detail.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        version = self.version_by_label(kwargs["label"])
        if self.yanked_for_caller(version):
            context = {**self.model_context(), "version": version}
            return render(request, "marketplace/version_yanked.html", context, status=410)
        context = self.get_context_data(**kwargs)
        context.update(self.model_context())
        context.update(self.version_context(version))
        context["aliases"] = Alias.objects.filter(model=self.catalog_model, version=version)
        context.update(version_panels_context(self.request, version, may_run=self.may("run")))
        context["yank_form"] = YankForm()
        context["deprecate_form"] = DeprecateForm()
        return self.render_to_response(context)


class ModelEditView(ModelPageMixin, TemplateView):
    """/models/<owner>/<name>/edit/: members change the card, summary, task, tags, license and visibility."""

    template_name = "marketplace/model_form.html"
    model_action = "change"

    def render_form(self, form: ModelEditForm, status: int = 200) -> HttpResponse:
        context = self.get_context_data(form=form, creating=False, tasks=TASKS, **self.model_context())
        return self.render_to_response(context, status=status)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        model = self.catalog_model
        initial = {field: getattr(model, field) for field in ModelEditForm.base_fields}
        return self.render_form(ModelEditForm(initial=initial))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = ModelEditForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    model = self.lock_model("change")
                    model = services.update_model(model=model, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Model saved.")
                return HttpResponseRedirect(reverse("catalog-model", args=[model.organization.slug, model.name]))
        self.catalog_model.refresh_from_db()
        return self.render_form(form, status=400)


class ModelDeleteView(ModelPageMixin, View):
    """Admins delete a model after typing its name: soft, restorable until the purge (the API's restore)."""

    http_method_names = ["post"]
    model_action = "delete"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        model = self.catalog_model
        if request.POST.get("confirm_name", "").strip() != model.name:
            messages.error(request, f"Type “{model.name}” to confirm the deletion.")
            return HttpResponseRedirect(reverse("catalog-model-edit", args=[model.organization.slug, model.name]))
        with transaction.atomic():
            deleted = services.soft_delete_model(model=self.lock_model("delete"), actor=request.user)
        messages.success(
            request,
            f"Model {model} deleted. An admin can restore it through the API until {deleted.purge_after:%Y-%m-%d}.",
        )
        return HttpResponseRedirect(reverse("catalog-models"))


class VersionCreateView(ModelPageMixin, TemplateView):
    """/models/<owner>/<name>/versions/new/: members start a draft version."""

    template_name = "marketplace/version_form.html"
    model_action = "change"

    def render_form(self, form: VersionCreateForm, status: int = 200) -> HttpResponse:
        context = self.get_context_data(form=form, **self.model_context())
        context["existing_labels"] = list(
            ModelVersion.objects.filter(model=self.catalog_model)
            .order_by("-created_at")
            .values_list("label", flat=True)[:5]
        )
        return self.render_to_response(context, status=status)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render_form(VersionCreateForm())

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = VersionCreateForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    model = self.lock_model("change")
                    version = services.create_version(model=model, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Draft {version.label} created: upload its files.")
                model = self.catalog_model
                return HttpResponseRedirect(
                    reverse("catalog-version-upload", args=[model.organization.slug, model.name, version.label])
                )
        return self.render_form(form, status=400)


class UploadView(ModelPageMixin, TemplateView):
    """/models/<owner>/<name>/versions/<label>/upload/: members drop files into a draft (static/js/upload.js)."""

    template_name = "marketplace/upload.html"
    model_action = "change"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        version = self.version_by_label(kwargs["label"])
        model = self.catalog_model
        if not version.is_draft:
            messages.info(request, f"Version {version.label} is {version.status}: its files can no longer change.")
            return HttpResponseRedirect(
                reverse("catalog-version", args=[model.organization.slug, model.name, version.label])
            )
        context = self.get_context_data(**kwargs)
        context.update(self.model_context())
        context.update(self.version_context(version))
        api_kwargs = {"owner": model.organization.slug, "name": model.name, "label": version.label}
        context["upload_config"] = {
            "filesUrl": reverse("api:model-version-file-list", kwargs=api_kwargs),
            "sessionsUrl": reverse("api:model-version-upload-list", kwargs=api_kwargs),
            "smallFileLimit": int(getattr(settings, "MARKETPLACE_PAGE_UPLOAD_SMALL_FILE_LIMIT", SMALL_FILE_LIMIT)),
            "chunkSize": int(getattr(settings, "MARKETPLACE_PAGE_UPLOAD_CHUNK_SIZE", CHUNK_SIZE)),
        }
        return self.render_to_response(context)


class VersionStatusFragment(ModelPageMixin, View):
    """The files and validation panel of a version, which htmx polls while the validation runs."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        version = self.version_by_label(kwargs["label"])
        if self.yanked_for_caller(version):
            return HttpResponse(status=410)
        context = {**self.model_context(), **self.version_context(version), "request": request}
        context["editing"] = request.GET.get("editing") == "1" and version.is_draft and self.may("change")
        return render(request, "marketplace/_version_status.html", context)


# -- version actions ------------------------------------------------------------------------------------------------
class VersionAction(ModelPageMixin, View):
    """A POST on a version: the service runs with the model locked and re-checked; refusals become messages."""

    http_method_names = ["post"]
    model_action = "change"
    done_message = ""

    def back(self, version: ModelVersion) -> HttpResponseRedirect:
        model = self.catalog_model
        return HttpResponseRedirect(
            reverse("catalog-version", args=[model.organization.slug, model.name, version.label])
        )

    def act(self, version: ModelVersion) -> Any:
        raise NotImplementedError

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        version = self.version_by_label(kwargs["label"])
        try:
            with transaction.atomic():
                self.lock_model(self.model_action)
                self.act(version)
        except ValidationError as exc:
            for message in _messages_from(exc):
                messages.error(request, message)
        else:
            messages.success(request, self.done_message.format(label=version.label))
        return self.back(version)


class PublishView(VersionAction):
    done_message = "Version {label} published. Its label and files are now immutable."

    def act(self, version: ModelVersion) -> Any:
        return services.publish_version(version=version, actor=self.request.user)


class DeprecateView(VersionAction):
    done_message = "Version {label} deprecated."

    def act(self, version: ModelVersion) -> Any:
        form = DeprecateForm(self.request.POST)
        if not form.is_valid():
            raise ValidationError(dict(form.errors.items()))
        return services.deprecate_version(version=version, actor=self.request.user, **form.cleaned_data)


class YankView(VersionAction):
    model_action = "delete"
    done_message = "Version {label} yanked: new users no longer get it."

    def act(self, version: ModelVersion) -> Any:
        return services.yank_version(
            version=version, actor=self.request.user, reason=self.request.POST.get("reason", "")
        )


class ValidateView(VersionAction):
    done_message = "Validation of {label} started."

    def act(self, version: ModelVersion) -> Any:
        if not version.is_draft:
            raise ValidationError(
                {"status": [f"Version “{version.label}” is {version.status}: only drafts are validated."]}
            )
        if services.request_validation(version=version, actor=self.request.user) is None:
            raise ValidationError({"files": ["Upload the ONNX model file first: there is nothing to validate."]})


class AliasSetView(VersionAction):
    """Point an alias (``production``, ``staging``…) at this published version; members."""

    done_message = "The alias now points at {label}."

    def act(self, version: ModelVersion) -> Any:
        name = self.request.POST.get("name", "").strip()
        alias = services.set_alias(model=self.catalog_model, actor=self.request.user, name=name, version=version)
        self.done_message = f"Alias “{alias.name}” now points at {{label}}."
        return alias


class FileRemoveView(VersionAction):
    done_message = "File removed from {label}."

    def back(self, version: ModelVersion) -> HttpResponseRedirect:
        model = self.catalog_model
        return HttpResponseRedirect(
            reverse("catalog-version-upload", args=[model.organization.slug, model.name, version.label])
        )

    def act(self, version: ModelVersion) -> Any:
        path = self.request.POST.get("path", "")
        return services.remove_file(version=version, actor=self.request.user, path=path)


# -- the model's Access panel (apps/organizations/access_panel.py) ------------------------------------------------
ModelGrantView, ModelRevokeView = access_views(
    model=Model,
    lookup=lambda owner, name, **rest: {"organization__slug": owner, "name": name},
    url_of=lambda model: reverse("catalog-model", args=[model.organization.slug, model.name]),
)
