"""Organizations that require single sign-on (docs/admin/enforced-sso.md).

A session remembers through which organizations' identity providers it signed in (``mark_signed_in_through``,
called by the SAML ACS). For each request made with a session, ``OrganizationSsoMiddleware`` works out the
organizations the user belongs to that require SSO and that this session has not satisfied; their ids go on the
user as ``access_excluded_organizations``, which ``restrict()`` reads: for this request the user's role and grants
in those organizations count for nothing (what is public or internal stays visible, as to anyone). So every page
and API route that resolves objects through ``restrict()`` refuses them, whatever its URL. On top of that, for a
clear answer:

* a page under ``/orgs/<slug>/`` sends the member to the organization's IdP (``SsoGate``, which core's
  OrganizationPageMixin asks), back to the page afterwards;
* ``/api/v1/orgs/<slug>/...`` called with the session answers 403 ``sso_required``.

Owners keep a break-glass local sign-in: a session of an owner who passed two-factor authentication at sign-in
is not held to the rule. API tokens are decided by their token, not by a session (like MFA): a token stops
working when its user leaves the organization (a bound token is revoked; any other loses the role at once).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from apps.core.gates import OrganizationGate

SESSION_KEY = "gpux_sso_organizations"
ALLAUTH_AUTHENTICATION_RECORDS = "account_authentication_methods"


class OrganizationSsoBackend(ModelBackend):
    """Sessions signed in through an organization's IdP: their user is loaded as ModelBackend's are. It never
    checks credentials itself: the SAML ACS signs people in once it has checked the assertion."""

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        return None


def mark_signed_in_through(request: HttpRequest, organization: Any) -> None:
    """Record in the session that it signed in through ``organization``'s IdP (after ``login()``)."""
    signed = set(request.session.get(SESSION_KEY, []))
    signed.add(organization.pk)
    request.session[SESSION_KEY] = sorted(signed)


def signed_in_through(request: HttpRequest, organization_id: int) -> bool:
    session = getattr(request, "session", None)
    return session is not None and organization_id in session.get(SESSION_KEY, [])


def passed_mfa(request: HttpRequest) -> bool:
    """Whether this session's sign-in included a second factor (allauth's authentication records)."""
    records = request.session.get(ALLAUTH_AUTHENTICATION_RECORDS, []) if hasattr(request, "session") else []
    return any(isinstance(record, dict) and record.get("method") == "mfa" for record in records)


def sso_excluded_organization_ids(request: HttpRequest, user: Any) -> frozenset[int]:
    """The organizations requiring SSO that ``user`` belongs to and this session may not reach."""
    from apps.core.access import Role
    from apps.organizations.models import Membership

    if not getattr(user, "is_authenticated", False):
        return frozenset()
    rows = Membership.objects.filter(user=user, organization__require_sso=True).values_list("organization_id", "role")
    excluded = set()
    for organization_id, role in rows:
        if signed_in_through(request, organization_id):
            continue
        if role == Role.OWNER and passed_mfa(request):
            continue  # break-glass
        excluded.add(organization_id)
    return frozenset(excluded)


def excluded_for(request: HttpRequest) -> frozenset[int]:
    return getattr(request, "sso_excluded_organizations", frozenset())


def sso_sign_in_url(organization: Any, next_url: str) -> str:
    return f"{reverse('org-saml-login', args=[organization.slug])}?{urlencode({'next': next_url})}"


def sso_sign_in_redirect(request: HttpRequest, organization: Any) -> HttpResponse | None:
    """For a page of ``organization``: a redirect to its IdP when this session may not reach it, else None."""
    if organization.pk not in excluded_for(request):
        return None
    messages.warning(
        request,
        f"“{organization.name}” requires signing in through its identity provider. "
        "Owners may instead sign in with their password and two-factor authentication.",
    )
    return HttpResponseRedirect(sso_sign_in_url(organization, request.get_full_path()))


def sso_sign_in_redirect_for_slug(request: HttpRequest, slug: str) -> HttpResponse | None:
    """``sso_sign_in_redirect`` for the organization named ``slug`` (one query, only when some are excluded)."""
    excluded = excluded_for(request)
    if not excluded:
        return None
    from apps.organizations.models import Organization

    organization = Organization.objects.filter(slug=slug, pk__in=excluded).first()
    return sso_sign_in_redirect(request, organization) if organization is not None else None


def sso_required_error(request: HttpRequest, organization: Any) -> str | None:
    """The refusal for an API call with the session to ``organization`` when this session may not reach it."""
    if organization.pk not in excluded_for(request):
        return None
    return (
        f"“{organization.slug}” requires single sign-on: sign in through its identity provider "
        f"({sso_sign_in_url(organization, '/')}) to use its API with this session, or use an API token."
    )


class SsoGate(OrganizationGate):
    """An organization that requires SSO: its pages send a member whose session may not reach it to its IdP."""

    def page_redirect_for_slug(self, request: HttpRequest, slug: str) -> HttpResponse | None:
        return sso_sign_in_redirect_for_slug(request, slug)


class OrganizationSsoMiddleware:
    """Works out, for a request made with a session, the organizations it may not reach (see the module)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: dict) -> Any:
        if request.headers.get("Authorization"):
            return None  # token callers: decided by the token, not by the session
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        excluded = sso_excluded_organization_ids(request, user)
        request.sso_excluded_organizations = excluded
        user.access_excluded_organizations = excluded
        slug = view_kwargs.get("org_slug")
        if not excluded or not slug or not request.path.startswith("/api/"):
            return None
        from apps.organizations.models import Organization

        organization = Organization.objects.filter(slug=slug, pk__in=excluded).first()
        if organization is None:
            return None
        return JsonResponse({"detail": sso_required_error(request, organization), "code": "sso_required"}, status=403)


def sso_banner(request: HttpRequest) -> dict[str, Any]:
    """Template context: the organizations this session must sign in to through their IdP (a banner in base.html)."""
    excluded = excluded_for(request)
    if not excluded:
        return {}
    from apps.organizations.models import Organization

    organizations = Organization.objects.filter(pk__in=excluded).order_by("slug")
    return {
        "sso_needed": [
            (organization, sso_sign_in_url(organization, request.get_full_path())) for organization in organizations
        ]
    }
