"""Single sign-on pages: an organization's SSO settings (SAML, group mappings, required SSO, verified domains), its
SCIM token, the link that verifies a domain by e-mail, and the sign-in step that routes an address to its
organization's IdP. Every change is a service call (apps/organizations/sso.py, scim.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from apps.core.access import VIEW, Role
from apps.core.forms import add_service_errors
from apps.core.lookup import ADMINISTER
from apps.organizations import scim, sso
from apps.organizations.forms import DomainForm, GroupMappingForm, SamlSettingsForm, SsoSignInForm
from apps.organizations.models import GroupMapping, ScimToken, Team, VerifiedDomain
from apps.organizations.provisioning import saml_source
from apps.organizations.views import OrganizationAction, OrganizationPage


def _sp_urls(request: HttpRequest, slug: str) -> dict[str, str]:
    try:
        return {
            "entity_id": request.build_absolute_uri(reverse("org-saml-metadata", args=[slug])),
            "acs_url": request.build_absolute_uri(reverse("org-saml-acs", args=[slug])),
            "login_url": request.build_absolute_uri(reverse("org-saml-login", args=[slug])),
        }
    except NoReverseMatch:  # SAML is not installed here
        return {}


class SsoView(OrganizationPage):
    """/orgs/<slug>/sso/: admins set up SAML and domains; owners map groups and require SSO."""

    template_name = "organizations/sso.html"
    organization_action = ADMINISTER

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        saml = sso.saml_settings_of(self.organization)
        available, why = sso.saml_available()
        context.update(
            saml=saml,
            saml_available=available,
            saml_unavailable_reason=why,
            sp=_sp_urls(self.request, self.organization.slug),
            mappings=GroupMapping.objects.filter(source=saml_source(self.organization), organization=self.organization)
            .select_related("team")
            .order_by("group"),
            domains=VerifiedDomain.objects.filter(organization=self.organization).order_by("domain"),
            dns_prefix=sso.DNS_TXT_PREFIX,
            may_map=self.has_role(GroupMapping.access.role_for("change")),
        )
        context.setdefault("form", SamlSettingsForm(initial=self.initial(saml)))
        context.setdefault("mapping_form", GroupMappingForm())
        context.setdefault("domain_form", DomainForm())
        return context

    @staticmethod
    def initial(saml) -> dict[str, Any]:
        return {
            "idp_metadata_url": saml.idp_metadata_url,
            "email_attribute": saml.email_attribute,
            "name_attribute": saml.name_attribute,
            "groups_attribute": saml.groups_attribute,
            "default_role": saml.default_role,
            "allow_idp_initiated": saml.allow_idp_initiated,
            "enabled": saml.enabled,
        }

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = SamlSettingsForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            if not data["idp_metadata_xml"].strip():
                data.pop("idp_metadata_xml")
            unchanged = data["idp_metadata_url"] == sso.saml_settings_of(self.organization).idp_metadata_url
            if unchanged and not request.POST.get("refetch"):
                data.pop("idp_metadata_url")  # unchanged: fetched again only when asked ("Fetch again")
            try:
                sso.update_saml_settings(actor=request.user, organization=self.organization, **data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "SAML settings saved.")
                return redirect("org-sso", self.organization.slug)
        return self.render_page(status=400, form=form)


class SsoAction(OrganizationAction):
    organization_action = ADMINISTER

    def next_url(self) -> str:
        return reverse("org-sso", args=[self.organization.slug])


class RequireSsoView(SsoAction):
    """Owners require (or stop requiring) SSO: ``require_sso=on`` or anything else."""

    organization_action = VIEW  # then the owner's role, not the base's administer (its refusal names owners)
    required_role = Role.OWNER

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wanted = request.POST.get("require_sso") == "on"
        try:
            sso.set_require_sso(actor=request.user, organization=self.organization, require_sso=wanted)
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(
            request, "Single sign-on is now required." if wanted else "Single sign-on is no longer required."
        )
        return self.back()


class GroupMappingAddView(SsoAction):
    organization_action = VIEW  # the role GroupMapping's policy names instead
    required_role = GroupMapping.access.role_for("change")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = GroupMappingForm(request.POST)
        if not form.is_valid():
            return self.refused(ValidationError(dict(form.errors.items())))
        team = None
        if form.cleaned_data["team"]:
            team = Team.objects.filter(organization=self.organization, slug=form.cleaned_data["team"].strip()).first()
            if team is None:
                return self.refused(ValidationError({"team": [f"There is no team “{form.cleaned_data['team']}”."]}))
        try:
            sso.set_group_mapping(
                actor=request.user,
                organization=self.organization,
                group=form.cleaned_data["group"],
                role=form.cleaned_data["role"],
                team=team,
            )
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(request, f"Group “{form.cleaned_data['group']}” mapped.")
        return self.back()


class GroupMappingDeleteView(SsoAction):
    organization_action = VIEW  # the role GroupMapping's policy names instead
    required_role = GroupMapping.access.role_for("delete")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        mapping = get_object_or_404(
            GroupMapping.objects.filter(organization=self.organization, source=saml_source(self.organization)),
            uuid=kwargs["uuid"],
        )
        sso.delete_group_mapping(actor=request.user, mapping=mapping)
        messages.success(request, f"The mapping of “{mapping.group}” was removed.")
        return self.back()


class DomainAddView(SsoAction):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            claim = sso.claim_domain(
                actor=request.user, organization=self.organization, domain=request.POST.get("domain")
            )
        except ValidationError as exc:
            return self.refused(exc)
        messages.info(
            request, f"Add the TXT record “{sso.DNS_TXT_PREFIX}{claim.token}” to {claim.domain}, then check it here."
        )
        return self.back()


class DomainMixin:
    def claim(self) -> VerifiedDomain:
        return get_object_or_404(
            VerifiedDomain.objects.filter(organization=self.organization), uuid=self.kwargs["uuid"]
        )


class DomainVerifyView(DomainMixin, SsoAction):
    """Look for the TXT record now."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        claim = self.claim()
        try:
            sso.verify_domain_by_dns(actor=request.user, claim=claim)
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(request, f"{claim.domain} is verified.")
        return self.back()


class DomainEmailView(DomainMixin, SsoAction):
    """E-mail a verification link to an address at the domain."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        claim = self.claim()
        try:
            sso.send_domain_verification_email(actor=request.user, claim=claim, address=request.POST.get("email"))
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(request, f"A verification link was sent to {request.POST.get('email')}.")
        return self.back()


class DomainDeleteView(DomainMixin, SsoAction):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        claim = self.claim()
        sso.delete_domain(actor=request.user, claim=claim)
        messages.success(request, f"{claim.domain} was removed.")
        return self.back()


def domain_verify_link(request: HttpRequest, token: str) -> HttpResponse:
    """/sso/domains/verify/<token>/: whoever reads the mailbox confirms (a POST, so that link scanners do not)."""
    done = None
    errors: list[str] = []
    if request.method == "POST":
        try:
            done = sso.verify_domain_by_email_link(token=token)
        except ValidationError as exc:
            errors = [m for ms in exc.message_dict.values() for m in ms]
    status = 400 if errors else 200
    return render(request, "organizations/domain_verify.html", {"done": done, "errors": errors}, status=status)


class ScimPageView(OrganizationPage):
    """/orgs/<slug>/scim/: the SCIM endpoint and token; making one shows its secret on that answer only."""

    template_name = "organizations/scim.html"
    organization_action = ADMINISTER

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["base_url"] = self.request.build_absolute_uri(f"/orgs/{self.organization.slug}/scim/v2")
        context["tokens"] = ScimToken.objects.filter(organization=self.organization).select_related("created_by")[:10]
        context["active"] = ScimToken.objects.filter(organization=self.organization, revoked_at__isnull=True).first()
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token, raw = scim.create_scim_token(actor=request.user, organization=self.organization)
        response = self.render_page(created=token, secret=raw)
        response["Cache-Control"] = "no-store"
        return response


class ScimRevokeView(OrganizationAction):
    organization_action = ADMINISTER

    def next_url(self) -> str:
        return reverse("org-scim", args=[self.organization.slug])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = get_object_or_404(ScimToken.objects.filter(organization=self.organization), uuid=kwargs["uuid"])
        scim.revoke_scim_token(actor=request.user, token=token)
        messages.success(request, "The SCIM token was revoked: provisioning stops until you make a new one.")
        return self.back()


def sso_sign_in(request: HttpRequest) -> HttpResponse:
    """/sso/: "sign in with SSO": an address at a verified domain goes to its organization's IdP."""
    form = SsoSignInForm(request.POST or None)
    next_url = request.POST.get("next") or request.GET.get("next") or settings.LOGIN_REDIRECT_URL
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = settings.LOGIN_REDIRECT_URL
    if request.method == "POST" and form.is_valid():
        organization = sso.organization_for_email(form.cleaned_data["email"])
        if organization is not None:
            login = reverse("org-saml-login", args=[organization.slug])
            return HttpResponseRedirect(f"{login}?{urlencode({'next': next_url})}")
        form.add_error(
            "email",
            "No organization signs in this address through single sign-on: sign in with your password instead.",
        )
    status = 400 if form.errors else 200
    return render(request, "organizations/sso_sign_in.html", {"form": form, "next": next_url}, status=status)
