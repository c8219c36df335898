"""View mixins for server-rendered pages. Like the API's base viewsets they decide nothing themselves:
they resolve objects through ``restrict()`` and answer as the API does.

* an object (or organization) the caller may not view answers 404 — or, for an anonymous caller, a redirect
  to the sign-in page, which tells nothing about whether it exists;
* one the caller may view but not act on answers 403;
* an organization that requires two-factor authentication sends its members without it to the MFA set-up;
* an organization that requires single sign-on sends its members whose session did not sign in through its
  identity provider there (both are gates the accounts app registers: apps/core/gates.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from apps.core import gates, lookup
from apps.core.access import VIEW, Role, organization_model, role_of

PAGE_SIZE = 25


def paginate(request: HttpRequest, queryset: QuerySet | list, *, per_page: int = PAGE_SIZE) -> Page:
    """One page of ``queryset`` from ``?page=``; a page number out of range gives the last (or first) page."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def get_viewable_or_404(queryset: QuerySet, user: Any, **lookup_: Any) -> Model:
    """The object ``lookup_`` names among those ``user`` may view, else 404."""
    return lookup.find_allowed(queryset, user, VIEW, **lookup_)


def require_allowed(obj: Model, user: Any, action: str) -> None:
    """403 unless restrict() allows ``action`` on ``obj`` (call it on an object already known to be viewable)."""
    lookup.require_action(obj, user, action)


def get_allowed_or_403(queryset: QuerySet, user: Any, action: str, **lookup_: Any) -> Model:
    """The object ``lookup_`` names: 404 if not viewable, 403 if viewable but ``action`` is not allowed."""
    return lookup.find_allowed(queryset, user, action, **lookup_)


def require_role(user: Any, organization: Any, role: Role) -> None:
    """403 unless the user's role in ``organization`` is at least ``role`` (as the API's ``require_role``)."""
    mine = role_of(user, organization)
    if mine is None or mine < role:
        raise PermissionDenied(f"Only an organization {role.label} or above may do this in “{organization.slug}”.")


def gate_redirect(request: HttpRequest, organization: Any) -> HttpResponse | None:
    """Where a rule of ``organization`` sends this user instead of its page (its MFA requirement: the set-up page),
    or None (apps/core/gates.py)."""
    if not request.user.is_authenticated:
        return None
    return gates.gate_redirect(request, organization)


class OrganizationPageMixin:
    """For pages under ``/orgs/<org_slug>/``.

    ``self.organization`` is resolved through ``Organization.objects.restrict(user, "view")``. A page may ask
    for more: ``organization_action`` (a restrict() action on the organization: "change" for its settings, or what
    is done in it, "create" objects or read the "audit" trail: apps/core/lookup.py) or ``required_role`` (the
    least role the page needs, read from the model's AccessPolicy, e.g. ``Invitation.access.role_for("view")``).
    Viewable but not enough answers 403.
    """

    organization_url_kwarg = "org_slug"
    organization_action = "view"
    required_role: Role | None = None
    allow_anonymous = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated and (not self.allow_anonymous or request.method not in ("GET", "HEAD")):
            return redirect_to_login(request.get_full_path())
        slug = kwargs[self.organization_url_kwarg]
        if request.user.is_authenticated:
            redirect = gates.gate_redirect_for_slug(request, slug)
            if redirect is not None:
                return redirect
        try:
            self.organization = get_viewable_or_404(organization_model().objects.all(), request.user, slug=slug)
        except Http404:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            raise
        redirect = gate_redirect(request, self.organization)
        if redirect is not None:
            return redirect
        if self.organization_action in lookup.IN_ORGANIZATION:
            lookup.require_organization_action(request.user, self.organization, self.organization_action)
        elif self.organization_action != VIEW:
            require_allowed(self.organization, request.user, self.organization_action)
        if self.required_role is not None:
            require_role(request.user, self.organization, self.required_role)
        return super().dispatch(request, *args, **kwargs)

    @property
    def my_role(self) -> Role | None:
        if not hasattr(self, "_my_role"):
            self._my_role = role_of(self.request.user, self.organization)
        return self._my_role

    def has_role(self, role: Role) -> bool:
        return self.my_role is not None and self.my_role >= role

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["organization"] = self.organization
        context["my_role"] = self.my_role
        context["is_admin"] = self.has_role(Role.ADMIN)
        context["is_owner"] = self.has_role(Role.OWNER)
        context["is_member"] = self.has_role(Role.MEMBER)
        return context
