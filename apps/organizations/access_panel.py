"""The Access panel of a model's, a deployment's and a registry's page (templates/includes/access_panel.html):
who has been granted what, and for the object's admins and owners a form to grant view, run or change to a user,
a team or another organization, and a button to revoke each grant.

``access_panel_context()`` gives a page what the panel shows; ``ObjectAccessView`` answers the panel's two forms
(POST ``.../access/`` grants, POST ``.../access/revoke/`` revokes) through the services of
apps/organizations/grants.py, as the API does: the object through restrict(view) (404; an anonymous visitor is sent
to sign in), the right to share (403), a refusal of the input as a message naming the field.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.views import View

from apps.core.access import CHANGE, SHARE, VIEW
from apps.core.mixins import gate_redirect
from apps.organizations.grants import (
    GRANTEE_TYPES,
    PERMISSION_HELP,
    grant_access,
    grants_of,
    offered_permissions,
    revoke_access,
)
from apps.organizations.models import Team

# The tag of the panel's messages: the panel shows them itself, where the page returns to (``#access``).
ACCESS = "access"


def _allowed(obj: models.Model, user: Any, action: str) -> bool:
    return type(obj)._default_manager.restrict(user, action).filter(pk=obj.pk).exists()


def access_panel_context(request: HttpRequest, obj: models.Model, *, grant_url: str, revoke_url: str) -> dict:
    """What the Access panel shows to the caller: nothing unless they may change the object; the grants; the forms
    for those who may share it (its organization's admins and owners)."""
    if not request.user.is_authenticated or not _allowed(obj, request.user, CHANGE):
        return {"access_panel": None}
    may_share = _allowed(obj, request.user, SHARE)
    permissions = offered_permissions(type(obj))
    panel = {
        "grants": grants_of(obj),
        "may_share": may_share,
        "grant_url": grant_url,
        "revoke_url": revoke_url,
        "grantee_types": GRANTEE_TYPES,
        "permissions": [(name, PERMISSION_HELP[name]) for name in permissions],
        "noun": obj._meta.verbose_name,
        "organization": obj.organization,
        "teams": list(
            Team.objects.restrict(request.user, VIEW).filter(organization_id=obj.organization_id).order_by("slug")
        )
        if may_share
        else [],
    }
    return {"access_panel": panel}


class ObjectAccessView(View):
    """POST: grant (``revoke = False``) or revoke one grant on the object the URL names, then back to its page."""

    http_method_names = ["post"]
    granted_model: type[models.Model]
    revoke = False

    def object_lookup(self, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def object_url(self, obj: models.Model) -> str:
        raise NotImplementedError

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        manager = self.granted_model._default_manager
        obj = get_object_or_404(
            manager.restrict(request.user, VIEW).select_related("organization"), **self.object_lookup(**kwargs)
        )
        redirect = gate_redirect(request, obj.organization)
        if redirect is not None:
            return redirect
        if not _allowed(obj, request.user, SHARE):
            raise PermissionDenied(
                f"Only admins and owners of “{obj.organization.slug}” manage who may use this {obj._meta.verbose_name}."
            )
        back = HttpResponseRedirect(f"{self.object_url(obj)}#access")
        fields = {name: request.POST.get(name, "") for name in ("grantee_type", "grantee", "permission")}
        try:
            if self.revoke:
                grant = revoke_access(obj=obj, actor=request.user, **fields)
            else:
                grant = grant_access(obj=obj, actor=request.user, **fields)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for message in errors:
                    messages.error(request, f"{field.replace('_', ' ')}: {message}", extra_tags=ACCESS)
            return back
        except LookupError:
            messages.error(request, "That grant is no longer there.", extra_tags=ACCESS)
            return back
        if self.revoke:
            messages.success(
                request, f"Revoked: {grant.grantee_label} no longer has {grant.permission} access.", extra_tags=ACCESS
            )
        else:
            messages.success(
                request,
                f"Granted: {grant.grantee_label} {PERMISSION_HELP[grant.permission]} ({grant.permission}).",
                extra_tags=ACCESS,
            )
        return back


def access_views(
    *, model: type[models.Model], lookup: Any, url_of: Any
) -> tuple[type[ObjectAccessView], type[ObjectAccessView]]:
    """The grant and revoke views of ``model``'s Access panel."""

    class GrantView(ObjectAccessView):
        granted_model = model

        def object_lookup(self, **kwargs: Any) -> dict[str, Any]:
            return lookup(**kwargs)

        def object_url(self, obj: models.Model) -> str:
            return url_of(obj)

    class RevokeView(GrantView):
        revoke = True

    GrantView.__name__ = GrantView.__qualname__ = f"{model.__name__}GrantView"
    RevokeView.__name__ = RevokeView.__qualname__ = f"{model.__name__}RevokeView"
    return GrantView, RevokeView
