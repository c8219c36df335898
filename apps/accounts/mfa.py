"""Organizations that require two-factor authentication of their members.

A member without an MFA authenticator who opens one of such an organization's pages is sent to the set-up
page (``MfaGate``, which core's page mixins ask); one who calls its API with a session gets 403 ``mfa_required``
(OrganizationMfaMiddleware for ``/api/v1/orgs/<slug>/...``; routes whose organization is known only once the
object is found, such as ``/api/v1/jobs/<uuid>/``, ask the gate too). API tokens are not affected: the
person made the token after signing in, and a token is not a password that MFA would protect.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from apps.core.access import role_of
from apps.core.gates import OrganizationGate


def needs_mfa_for(user: Any, organization: Any) -> bool:
    """True when ``organization`` requires MFA, ``user`` is one of its members and has no authenticator."""
    if not getattr(organization, "require_mfa", False) or not getattr(user, "is_authenticated", False):
        return False
    if role_of(user, organization) is None:
        return False
    return not is_mfa_enabled(user)


def mfa_required_error(request: HttpRequest, organization: Any) -> str | None:
    """The refusal for an API call made with the browser session by a member of ``organization`` (which requires
    MFA) who has no authenticator, else None. Token callers are decided by their token, not by the session."""
    if request.headers.get("Authorization"):
        return None
    user = getattr(request, "user", None)
    if user is None or not needs_mfa_for(user, organization):
        return None
    return (
        f"“{organization.slug}” requires two-factor authentication: "
        "set up an authenticator app in your account settings first."
    )


def mfa_setup_redirect(request: HttpRequest, organization: Any) -> HttpResponse | None:
    """A redirect to the MFA set-up page when ``organization`` requires MFA and this member has none."""
    if not needs_mfa_for(request.user, organization):
        return None
    messages.warning(
        request,
        f"“{organization.name}” requires two-factor authentication. "
        "Set up an authenticator app to continue to its pages.",
    )
    return HttpResponseRedirect(f"{reverse('mfa_activate_totp')}?{urlencode({'next': request.get_full_path()})}")


class MfaGate(OrganizationGate):
    """An organization that requires MFA: its pages send a member without it to the set-up page; its API, called
    with the session, refuses them with 403 ``mfa_required``."""

    def page_redirect(self, request: HttpRequest, organization: Any) -> HttpResponse | None:
        return mfa_setup_redirect(request, organization)

    def api_refusal(self, request: HttpRequest, organization: Any) -> tuple[str, str] | None:
        error = mfa_required_error(request, organization)
        return (error, "mfa_required") if error is not None else None


class OrganizationMfaMiddleware:
    """``/api/v1/orgs/<org_slug>/...`` called with a session by a member who lacks MFA: 403 ``mfa_required``."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: dict) -> Any:
        slug = view_kwargs.get("org_slug")
        if not slug or not request.path.startswith("/api/"):
            return None
        if request.headers.get("Authorization"):
            return None  # token callers: decided by the token, not by the session
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        from apps.organizations.models import Organization

        organization = Organization.objects.filter(slug=slug, require_mfa=True).first()
        error = mfa_required_error(request, organization) if organization is not None else None
        if error is None:
            return None
        return JsonResponse({"detail": error, "code": "mfa_required"}, status=403)
