"""SAML sign-in per organization with djangosaml2 (docs/admin/sso-saml.md).

Each organization is its own service provider: ``/orgs/<slug>/sso/saml/metadata/`` (the entity id and the SP
metadata), ``.../login/`` (sends an AuthnRequest to the IdP, HTTP-Redirect) and ``.../acs/`` (takes the IdP's
Response, HTTP-POST). djangosaml2's views do the protocol; ``sp_config`` builds pysaml2's configuration from the
organization's settings for each request (``SAML_CONFIG_LOADER``).

What an assertion must be to sign someone in:

* signed by a key in the IdP's metadata (``want_assertions_signed``; pysaml2 checks with xmlsec1 and uses only
  the keys of the metadata, never one the message carries) — a tampered, unsigned or wrapped assertion fails;
* from the IdP's entity id (the issuer of the Response and of the assertion) and for this organization's entity
  id (its audience);
* within its validity window, with ``SAML_CLOCK_SKEW_SECONDS`` of slack;
* an answer to an AuthnRequest this browser sent (``InResponseTo`` in the outstanding queries of its SAML
  session) — unless the organization allows IdP-initiated sign-in;
* never seen before: each accepted assertion id is kept until it expires (``SamlAssertionUse``); a replay is
  refused.

Then the IdP's attributes go through ``sign_in_through_idp`` (just-in-time account, membership, role and teams
from groups, audited) and the session records that it signed in through this organization's IdP, which
organizations that require SSO look for (apps/accounts/sso.py).
"""

from __future__ import annotations

import calendar
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from djangosaml2.cache import OutstandingQueriesCache
from djangosaml2.views import AssertionConsumerServiceView, LoginView, MetadataView
from saml2 import BINDING_HTTP_POST
from saml2.config import SPConfig
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_UNSPECIFIED
from saml2.time_util import str_to_time
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from apps.accounts.sso import mark_signed_in_through
from apps.audit.services import record_event
from apps.core.access import Role
from apps.organizations.models import Organization, SamlAssertionUse, SamlSettings
from apps.organizations.provisioning import IdentityRefused, role_from_groups, sign_in_through_idp
from apps.organizations.services import role_of
from apps.organizations.sso import verified_domain_of

logger = logging.getLogger(__name__)

BACKEND = "apps.accounts.sso.OrganizationSsoBackend"
TEST_REQUESTS_KEY = "gpux_saml_test_requests"


class SamlRefused(Exception):
    """An assertion the portal will not accept; the message says why (shown to the person, recorded in audit)."""


# -- configuration --------------------------------------------------------------------------------------------
def organization_for_request(request: HttpRequest) -> Organization:
    """The organization named by the URL, with SAML settings (404 when it has none, or is personal)."""
    organization = getattr(request, "saml_organization", None)
    if organization is not None:
        return organization
    slug = request.resolver_match.kwargs.get("org_slug") if request.resolver_match else None
    organization = (
        Organization.objects.filter(slug=slug, is_personal=False, saml__isnull=False).select_related("saml").first()
    )
    if organization is None:
        raise Http404("This organization has no SAML sign-in.")
    request.saml_organization = organization
    return organization


def sp_urls(request: HttpRequest, organization: Organization) -> tuple[str, str]:
    """(entity id, ACS URL) of the organization's service provider, on the host the request came to."""
    entity_id = request.build_absolute_uri(reverse("org-saml-metadata", args=[organization.slug]))
    acs_url = request.build_absolute_uri(reverse("org-saml-acs", args=[organization.slug]))
    return entity_id, acs_url


def sp_config(request: HttpRequest) -> SPConfig:
    """``SAML_CONFIG_LOADER``: pysaml2's SP configuration of the organization the request is for."""
    organization = organization_for_request(request)
    saml: SamlSettings = organization.saml
    entity_id, acs_url = sp_urls(request, organization)
    conf: dict[str, Any] = {
        "entityid": entity_id,
        "xmlsec_binary": settings.SAML_XMLSEC_BINARY,
        "allow_unknown_attributes": True,
        "accepted_time_diff": settings.SAML_CLOCK_SKEW_SECONDS,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "service": {
            "sp": {
                "name": f"GPUX Portal: {organization.name}",
                "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_UNSPECIFIED],
                "allow_unsolicited": saml.allow_idp_initiated,
                "authn_requests_signed": False,
                "logout_requests_signed": False,
                "want_assertions_signed": True,
                "want_response_signed": False,
                "only_use_keys_in_metadata": True,
            }
        },
        "metadata": {"inline": [saml.idp_metadata_xml]} if saml.idp_metadata_xml else {},
    }
    config = SPConfig()
    config.load(conf)
    return config


# -- views ----------------------------------------------------------------------------------------------------
class OrganizationSamlMixin:
    config_loader_path = "apps.accounts.saml.sp_config"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        organization_for_request(request)
        return super().dispatch(request, *args, **kwargs)

    def usable_or_404(self, request: HttpRequest) -> Organization:
        organization = organization_for_request(request)
        if not organization.saml.is_usable:
            raise Http404("This organization's SAML sign-in is not enabled.")
        return organization


class SamlMetadataView(OrganizationSamlMixin, MetadataView):
    """The SP metadata an IdP imports (entity id, ACS URL, NameID formats)."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        response["Content-Type"] = "application/samlmetadata+xml; charset=utf-8"
        return response


class SamlLoginView(OrganizationSamlMixin, LoginView):
    """Start a sign-in at the organization's IdP. ``?test=1`` (admins): a test sign-in whose answer shows the
    attributes received without signing anyone in or changing anything."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        organization = self.usable_or_404(request)
        testing = request.GET.get("test") == "1"
        if testing:
            mine = role_of(request.user, organization)
            if mine is None or mine < Role.ADMIN:
                raise PermissionDenied("Only the organization's admins may run a test sign-in.")
        response = super().get(request, *args, **kwargs)
        if testing and response.status_code in (200, 302):
            sent = list(OutstandingQueriesCache(request.saml_session).outstanding_queries())
            request.saml_session[TEST_REQUESTS_KEY] = sent[-1:] + request.saml_session.get(TEST_REQUESTS_KEY, [])[:4]
        return response

    def should_prevent_auth(self, request: HttpRequest) -> bool:
        # Signed in already (locally, or through another IdP) is no reason to refuse: an organization that requires
        # SSO sends its members here precisely then.
        return False


@method_decorator(csrf_exempt, name="dispatch")  # the IdP's POST carries no CSRF token; the assertion is checked
class SamlAcsView(OrganizationSamlMixin, AssertionConsumerServiceView):
    """Take the IdP's Response: checked by pysaml2, then by ``custom_validation``; the person is then provisioned
    and signed in (or, for a test sign-in, shown what arrived)."""

    refusal: Exception | None = None
    test_result: dict | None = None
    _in_response_to: str | None = None

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        organization = self.usable_or_404(request)
        response = super().post(request)
        if self.test_result is not None:
            return render(
                request, "accounts/saml_test_result.html", {"organization": organization, "result": self.test_result}
            )
        return response

    def custom_validation(self, response: Any) -> None:
        organization = organization_for_request(self.request)
        saml = organization.saml
        self._in_response_to = response.in_response_to
        try:
            issuers = {response.issuer(), getattr(response.assertion.issuer, "text", None)}
            if issuers != {saml.idp_entity_id}:
                raise SamlRefused(
                    f"The response comes from {', '.join(sorted(map(str, issuers)))}, not from this organization's "
                    f"identity provider ({saml.idp_entity_id})."
                )
            if response.in_response_to is None and not saml.allow_idp_initiated:
                raise SamlRefused("Sign-ins started at the identity provider are not allowed for this organization.")
            self._remember_assertion(organization, response)
        except SamlRefused as exc:
            self.refusal = exc
            raise

    def _remember_assertion(self, organization: Organization, response: Any) -> None:
        """Keep the assertion's id until it expires; a second use of it is a replay."""
        now = timezone.now()
        SamlAssertionUse.objects.filter(organization=organization, expires_at__lt=now).delete()
        expires = now + timedelta(hours=1)
        conditions = response.assertion.conditions
        if conditions is not None and conditions.not_on_or_after:
            expires = datetime.fromtimestamp(calendar.timegm(str_to_time(conditions.not_on_or_after)), tz=UTC)
            expires += timedelta(seconds=settings.SAML_CLOCK_SKEW_SECONDS)
        try:
            with transaction.atomic():
                SamlAssertionUse.objects.create(
                    organization=organization, assertion_id=response.assertion.id, expires_at=expires
                )
        except IntegrityError:
            raise SamlRefused("This assertion has already been used (a replay).") from None

    def authenticate_user(self, request, session_info, attribute_mapping, create_unknown_user, assertion_info):
        organization = organization_for_request(request)
        saml = organization.saml
        attributes = session_info.get("ava", {})
        name_id = session_info.get("name_id")
        name_id_text = getattr(name_id, "text", "") or ""
        email = _first(attributes.get(saml.email_attribute)) or (name_id_text if "@" in name_id_text else "")
        name = _first(attributes.get(saml.name_attribute)) if saml.name_attribute else ""
        groups = [str(g) for g in attributes.get(saml.groups_attribute, [])] if saml.groups_attribute else []
        if self._is_test(request):
            self.test_result = {
                "name_id": name_id_text,
                "name_id_format": getattr(name_id, "format", ""),
                "attributes": attributes,
                "email": email,
                "name": name,
                "groups": groups,
                "domain_verified": verified_domain_of(organization, email),
                "role": role_from_groups(organization, groups),
                "issuer": session_info.get("issuer"),
            }
            return None
        try:
            user = sign_in_through_idp(
                organization=organization, email=email.strip().lower(), name=name, groups=groups, name_id=name_id_text
            )
        except IdentityRefused as exc:
            self.refusal = exc
            raise PermissionDenied(str(exc)) from exc
        if user is None:
            self.refusal = IdentityRefused(
                f"Your identity provider's groups give you no role in “{organization.slug}”: ask its admins.", "no_role"
            )
            raise PermissionDenied(str(self.refusal))
        auth.login(request, user, backend=BACKEND)
        mark_signed_in_through(request, organization)
        record_event(
            action="sso.saml_signed_in",
            organization=organization,
            actor=user,
            target=user,
            metadata={"name_id": name_id_text, "groups": groups},
        )
        return user

    def _is_test(self, request: HttpRequest) -> bool:
        tests = request.saml_session.get(TEST_REQUESTS_KEY, [])
        return bool(self._in_response_to and self._in_response_to in tests)

    def custom_redirect(self, user: Any, relay_state: str, session_info: dict) -> str | None:
        return None

    def handle_acs_failure(self, request: HttpRequest, exception: Exception | None = None, status: int = 403, **kwargs):
        organization = organization_for_request(request)
        shown = self.refusal or exception
        reason = _reason(shown)
        record_event(
            action="sso.saml_refused",
            organization=organization,
            actor_label="SAML sign-in",
            metadata={"reason": reason, "error": type(shown).__name__ if shown else ""},
        )
        return render(
            request,
            "accounts/saml_error.html",
            {"organization": organization, "reason": reason},
            status=status,
        )


def _first(values: Any) -> str:
    if isinstance(values, list | tuple):
        return str(values[0]) if values else ""
    return str(values or "")


def _reason(exception: Exception | None) -> str:
    """What to tell the person (and the audit trail) about a refused response, without echoing XML back."""
    from saml2.response import StatusError, UnsolicitedResponse
    from saml2.sigver import SignatureError
    from saml2.validate import ResponseLifetimeExceed, ToEarly

    if isinstance(exception, SamlRefused | IdentityRefused | PermissionDenied):
        return str(exception)
    if isinstance(exception, SignatureError):
        return "The response's signature does not check out against the identity provider's certificate."
    if isinstance(exception, ResponseLifetimeExceed):
        return "The assertion has expired (or the clocks of the portal and the identity provider disagree)."
    if isinstance(exception, ToEarly):
        return "The assertion is not valid yet (the clocks of the portal and the identity provider disagree)."
    if isinstance(exception, UnsolicitedResponse):
        return "This response answers no sign-in this browser started (or it was already used)."
    if isinstance(exception, StatusError):
        return "The identity provider did not sign you in."
    text = str(exception or "")
    if "condition not ok" in text.lower():
        return (
            "The assertion's conditions do not hold: it has expired, is not valid yet, or is meant for another "
            "service provider (its audience)."
        )
    return "The identity provider's response could not be accepted."
