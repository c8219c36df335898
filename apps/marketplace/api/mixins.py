"""What the catalog API's views share: the model lookup under ``/models/{owner}/{name}/``, the upload session
lookup under ``/uploads/{uuid}/``, serving a file, and keeping a service's refusal message."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Prefetch
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from apps.analytics import usage
from apps.analytics.models import UsageKind
from apps.analytics.services import has_used
from apps.core import lookup
from apps.core.api.views import api_refusals, bound_organization_id
from apps.marketplace import downloads
from apps.marketplace.api.serializers import UploadSessionSerializer
from apps.marketplace.downloads import cache_control
from apps.marketplace.exceptions import UpstreamFailed, VersionYanked
from apps.marketplace.models import Model, ModelVersion, UploadSession, VersionFile, VersionStatus


class CatalogErrorsMixin:
    """Keep the message of a service's Django ``PermissionDenied``."""

    def handle_exception(self, exc):
        if isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) or None)
        return super().handle_exception(exc)


class AnyContentMixin:
    """Download and upload routes answer whatever the client accepts (bytes); errors still come as JSON."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


class ModelLookupMixin(CatalogErrorsMixin):
    """Routes under ``/models/{owner}/{name}/``: the model is resolved through restrict() (404 if not viewable)."""

    @property
    def catalog_model(self) -> Model:
        if not hasattr(self, "_catalog_model"):
            with api_refusals():
                self._catalog_model = lookup.find_allowed(
                    Model.objects.select_related("organization"),
                    self.request.user,
                    within_organization=bound_organization_id(self.request),
                    organization__slug=self.kwargs["owner"],
                    name=self.kwargs["name"],
                )
        return self._catalog_model

    def allowed_model(self, action: str) -> Model:
        """The model if the caller may ``action`` it, in one query (core's ``find_allowed_at_once``: the predict
        paths); else 404 (not viewable) or 403 (viewable only)."""
        if not hasattr(self, "_catalog_model"):
            with api_refusals():
                self._catalog_model = lookup.find_allowed_at_once(
                    Model.objects.select_related("organization"),
                    self.request.user,
                    action,
                    within_organization=bound_organization_id(self.request),
                    message="You may view {obj} but not {action} it.",
                    organization__slug=self.kwargs["owner"],
                    name=self.kwargs["name"],
                )
            return self._catalog_model
        return self.require(action)

    def may(self, action: str) -> bool:
        return lookup.allows(
            self.catalog_model, self.request.user, action, within_organization=bound_organization_id(self.request)
        )

    def require(self, action: str) -> Model:
        """403 unless the caller may ``action`` the model (the model is visible, or this was a 404 already)."""
        model = self.catalog_model
        with api_refusals():
            lookup.require_action(
                model,
                self.request.user,
                action,
                within_organization=bound_organization_id(self.request),
                message="You may view {obj} but not {action} it.",
            )
        return model

    def lock_model(self, action: str) -> Model:
        """Inside a transaction: the model, locked, if the caller may still ``action`` it; 403 otherwise."""
        with api_refusals():
            return lookup.lock_allowed(
                Model.objects.all(),
                self.catalog_model,
                self.request.user,
                action,
                within_organization=bound_organization_id(self.request),
                message="You may not {action} {obj}.",
            )

    def versions(self):
        """The model's versions the caller may see (through restrict(): drafts only to those who may change the
        model)."""
        visible = ModelVersion.objects.restrict(
            self.request.user, "view", within_organization=bound_organization_id(self.request)
        )
        return (
            visible.filter(model=self.catalog_model)
            .select_related("model__organization", "created_by", "validation_job")
            .prefetch_related(Prefetch("files", VersionFile.objects.select_related("blob")), "aliases")
        )

    def version_by_label(self, label: str) -> ModelVersion:
        return lookup.find_among(self.versions(), label=label)

    def hide_draft(self, version: ModelVersion) -> None:
        """404 for a draft the caller may not change (for versions found without ``versions()``)."""
        if version.status == VersionStatus.DRAFT:
            lookup.require_action(
                self.catalog_model,
                self.request.user,
                "change",
                within_organization=bound_organization_id(self.request),
                hidden=True,
            )

    def refuse_yanked(self, version: ModelVersion, *, pinned: bool) -> None:
        """The yank rule: a yanked version answers 410 unless the caller pinned its exact label and downloaded it
        before (their usage events say so)."""
        if version.status != VersionStatus.YANKED:
            return
        if pinned and has_used(actor=self.request.user, subject=version):
            return
        raise VersionYanked(
            f"Version “{version.label}” of {version.model} was yanked: {version.yank_reason} "
            "Only those who downloaded it before, asking for this exact version, may still get it."
        )


class DownloadMixin(AnyContentMixin):
    """Serve a version's file through downloads.serve_blob, writing a usage event per answer."""

    def fetch_missing(self, version: ModelVersion, path: str) -> VersionFile:
        """A file the version lists upstream only (a synced model in metadata mode): fetched now, or 404/502."""
        try:
            version_file = downloads.fetch_missing_file(version, path)
        except downloads.FileSourceFailed as exc:
            raise UpstreamFailed(f"The file is not cached yet and its registry could not deliver it: {exc}") from exc
        if version_file is None:
            raise Http404("No such file in this version.")
        fetched = VersionFile.objects.select_related("blob", "version").get(pk=version_file.pk)
        # A pull through the registry: the portal fetched these bytes upstream for this caller (usage analytics).
        usage.record(
            UsageKind.REGISTRY_PULL,
            organization_id=version.model.organization_id,
            **usage.caller(self.request),
            model_id=version.model_id,
            version_id=version.pk,
            subject_type=version._meta.label_lower,
            subject_id=str(version.uuid),
            subject_label=f"{version.model}@{version.label}",
            path=fetched.path,
            blob_sha256=fetched.blob.sha256,
            bytes=fetched.blob.size,
        )
        return fetched

    def send_file(
        self,
        request,
        version: ModelVersion,
        version_file: VersionFile,
        *,
        route: str,
        immutable: bool,
        actor: Any = None,
    ):
        actor = actor if actor is not None else request.user
        delivery = downloads.Delivery(
            blob=version_file.blob,
            filename=downloads.basename(version_file.path),
            cache_control=cache_control(version, immutable=immutable),
        )

        def served(status_code: int, sent: int) -> None:
            if request.method == "HEAD" or status_code == 416:
                return
            who = usage.caller(request)
            who["user_id"] = actor.pk if getattr(actor, "is_authenticated", False) else None
            usage.record(
                UsageKind.DOWNLOAD,
                organization_id=version.model.organization_id,
                **who,
                model_id=version.model_id,
                version_id=version.pk,
                subject_type=version._meta.label_lower,
                subject_id=str(version.uuid),
                subject_label=f"{version.model}@{version.label}",
                path=version_file.path,
                blob_sha256=version_file.blob.sha256,
                bytes=sent if status_code != 304 else 0,
                status_code=status_code,
                outcome="ok" if status_code < 400 else "error",
                metadata={"route": route, "range": request.headers.get("Range", "")[:200]},
            )

        return downloads.serve_blob(request, delivery, on_served=served)


class UploadSessionMixin(CatalogErrorsMixin):
    """Routes under ``/uploads/{uuid}/``: the session's model must be viewable (404) and changeable (403)."""

    def get_restrict_action(self) -> str:
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def session(self, uuid: Any) -> UploadSession:
        session = lookup.find_among(
            UploadSession.objects.select_related("version__model__organization", "file__blob", "job"), uuid=uuid
        )
        with api_refusals():  # the session's version: 404 unless viewable, 403 unless changeable
            lookup.find_allowed(
                ModelVersion.objects.all(),
                self.request.user,
                "change",
                within_organization=bound_organization_id(self.request),
                message="You may view this model but not upload to it.",
                pk=session.version_id,
            )
        return session

    def answer(self, session: UploadSession, status_code: int = 200) -> Response:
        data = UploadSessionSerializer(session, context={"request": self.request}).data
        headers = {
            "Upload-Offset": str(session.offset),
            "Upload-Length": str(session.size),
            "Cache-Control": "no-store",
        }
        return Response(data, status=status_code, headers=headers)
