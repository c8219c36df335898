"""Organization pages. Every object is listed or fetched through ``restrict()``; every change is a service call.

Forms that fail (in the form or in the service) render again with the errors and status 400; button actions
(change a role, remove a member, revoke) report a service's refusal as a message. A service's
PermissionDenied answers 403, as in the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.models import ApiToken
from apps.accounts.services import revoke_api_token
from apps.core import lookup
from apps.core.access import Role
from apps.core.forms import add_service_errors
from apps.core.lookup import AUDIT, require_organization_action
from apps.core.mixins import OrganizationPageMixin, get_allowed_or_403, paginate
from apps.organizations import services
from apps.organizations.forms import (
    InvitationForm,
    OrganizationForm,
    OrganizationSettingsForm,
    RoleForm,
    TeamForm,
    TeamMemberForm,
)
from apps.organizations.models import Invitation, Membership, Team


def _messages_from(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for messages_ in error.message_dict.values() for message in messages_]
    return list(error.messages)


class OrganizationPage(OrganizationPageMixin, TemplateView):
    """A page about one organization; subclasses add their lists and forms."""

    status = 200

    def render_page(self, status: int = 200, **context: Any) -> HttpResponse:
        return self.render_to_response(self.get_context_data(**context), status=status)


class OrganizationAction(OrganizationPageMixin, View):
    """A POST-only action on an organization's page, answered with a redirect back to ``next_url()``."""

    http_method_names = ["post"]

    def next_url(self) -> str:
        return reverse("org-overview", args=[self.organization.slug])

    def back(self) -> HttpResponseRedirect:
        return HttpResponseRedirect(self.next_url())

    def refused(self, error: ValidationError) -> HttpResponseRedirect:
        for message in _messages_from(error):
            messages.error(self.request, message)
        return self.back()


# The invitation a signed-out visitor opened, kept for after they sign in (AccountAdapter.get_login_redirect_url).
PENDING_INVITATION_KEY = "pending_invitation"


# -- create and overview --------------------------------------------------------------------------------------
@login_required
def organization_create(request: HttpRequest) -> HttpResponse:
    """/orgs/new/: any signed-in user creates an organization and becomes its owner."""
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.create_organization(creator=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Organization “{organization.name}” created. You are its owner.")
            return redirect("org-overview", organization.slug)
    status = 400 if form.errors else 200
    return render(request, "organizations/create.html", {"form": form}, status=status)


class OverviewView(OrganizationPage):
    """/orgs/<slug>/: anyone who may view the organization (anonymous too, when it is public)."""

    template_name = "organizations/overview.html"
    allow_anonymous = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        members = Membership.objects.restrict(user, "view").filter(organization=self.organization)
        teams = Team.objects.restrict(user, "view").filter(organization=self.organization)
        context["member_count"] = members.count()
        context["team_count"] = teams.count()
        context["recent_members"] = members.select_related("user").order_by("-created_at")[:5]
        context["teams"] = teams.order_by("slug")[:5]
        return context


class SettingsView(OrganizationPage):
    """/orgs/<slug>/settings/: owners change the organization (restrict() "change") or delete it."""

    template_name = "organizations/settings.html"
    organization_action = "change"

    def form(self, data: Any = None) -> OrganizationSettingsForm:
        org = self.organization
        initial = {
            "slug": org.slug,
            "name": org.name,
            "description": org.description,
            "visibility": org.visibility,
            "require_mfa": org.require_mfa,
        }
        return OrganizationSettingsForm(data, initial=initial, personal=org.is_personal)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render_page(form=self.form())

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.form(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            if self.organization.is_personal:
                data.pop("slug")
            try:
                organization = services.update_organization(actor=request.user, organization=self.organization, **data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Settings saved.")
                return redirect("org-settings", organization.slug)
        self.organization.refresh_from_db()
        return self.render_page(status=400, form=form)


class DeleteView(OrganizationAction):
    """Owners delete the organization after typing its slug."""

    organization_action = "delete"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.POST.get("confirm_slug", "").strip().lower() != self.organization.slug:
            messages.error(request, f"Type “{self.organization.slug}” to confirm the deletion.")
            return redirect("org-settings", self.organization.slug)
        try:
            services.delete_organization(actor=request.user, organization=self.organization)
        except ValidationError as exc:
            for message in _messages_from(exc):
                messages.error(request, message)
            return redirect("org-settings", self.organization.slug)
        messages.success(request, f"Organization “{self.organization.slug}” deleted.")
        return redirect("home")


# -- members --------------------------------------------------------------------------------------------------
class MembersView(OrganizationPage):
    """/orgs/<slug>/members/: the organization's members (viewers and up); admins change roles and remove."""

    template_name = "organizations/members.html"
    allow_anonymous = True  # members are as visible as their organization (restrict() on Membership decides)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        memberships = (
            Membership.objects.restrict(self.request.user, "view")
            .filter(organization=self.organization)
            .select_related("user")
            .order_by("-role", "user__handle")
        )
        query = self.request.GET.get("q", "").strip()
        if query:
            memberships = memberships.filter(user__handle__icontains=query) | memberships.filter(
                user__name__icontains=query
            )
        context["page_obj"] = paginate(self.request, memberships)
        context["query"] = query
        context["role_choices"] = [(role.value, role.label) for role in Role if role <= (self.my_role or 0)]
        return context


class MemberRoleView(OrganizationAction):
    """Change one member's role (admins; owners for owners): the service applies the role table."""

    def next_url(self) -> str:
        return reverse("org-members", args=[self.organization.slug])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        membership = get_allowed_or_403(
            Membership.objects.filter(organization=self.organization).select_related("user", "organization"),
            request.user,
            "change",
            user__handle=kwargs["handle"],
        )
        form = RoleForm(request.POST)
        if not form.is_valid():
            return self.refused(ValidationError({"role": form.errors["role"]}))
        try:
            services.change_member_role(actor=request.user, membership=membership, role=form.cleaned_data["role"])
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(request, f"{membership.user.handle} is now {Role(form.cleaned_data['role']).label}.")
        return self.back()


class MemberRemoveView(OrganizationAction):
    """Remove a member (admins, up to admin; owners for owners)."""

    def next_url(self) -> str:
        return reverse("org-members", args=[self.organization.slug])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        membership = get_allowed_or_403(
            Membership.objects.filter(organization=self.organization).select_related("user", "organization"),
            request.user,
            "delete",
            user__handle=kwargs["handle"],
        )
        try:
            services.remove_member(actor=request.user, membership=membership)
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(request, f"{membership.user.handle} was removed from “{self.organization.slug}”.")
        return self.back()


class LeaveView(OrganizationAction):
    """Any member leaves (the last owner cannot)."""

    def next_url(self) -> str:
        return reverse("org-members", args=[self.organization.slug])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            services.leave_organization(user=request.user, organization=self.organization)
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(request, f"You left “{self.organization.name}”.")
        return redirect("home")


# -- teams ----------------------------------------------------------------------------------------------------
class TeamsView(OrganizationPage):
    """/orgs/<slug>/teams/: the teams (viewers and up); admins create them here."""

    template_name = "organizations/teams.html"
    allow_anonymous = True  # teams are as visible as their organization (restrict() on Team decides)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        teams = Team.objects.restrict(self.request.user, "view").filter(organization=self.organization)
        context["page_obj"] = paginate(self.request, teams.order_by("slug"))
        context.setdefault("form", TeamForm())
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = TeamForm(request.POST)
        if form.is_valid():
            try:
                team = services.create_team(actor=request.user, organization=self.organization, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Team “{team.name}” created.")
                return redirect("org-team", self.organization.slug, team.slug)
        return self.render_page(status=400, form=form)


class TeamPageMixin:
    def get_team(self) -> Team:
        if not hasattr(self, "team"):
            self.team = lookup.find_allowed(
                Team.objects.filter(organization=self.organization).select_related("group", "organization"),
                self.request.user,
                slug=self.kwargs["team_slug"],
            )
        return self.team


class TeamView(TeamPageMixin, OrganizationPage):
    """/orgs/<slug>/teams/<team>/: a team and its members; admins edit it and manage its members."""

    template_name = "organizations/team.html"
    allow_anonymous = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        team = self.get_team()
        context["team"] = team
        context["page_obj"] = paginate(self.request, services.team_members(team))
        context.setdefault("member_form", TeamMemberForm())
        context.setdefault(
            "edit_form", TeamForm(initial={"slug": team.slug, "name": team.name, "description": team.description})
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Edit the team (restrict() "change": admins)."""
        team = self.get_team()
        lookup.require_action(team, request.user, "change")
        form = TeamForm(request.POST)
        if form.is_valid():
            try:
                team = services.update_team(actor=request.user, team=team, **form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Team saved.")
                return redirect("org-team", self.organization.slug, team.slug)
        self.team.refresh_from_db()
        return self.render_page(status=400, edit_form=form)


class TeamDeleteView(TeamPageMixin, OrganizationAction):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        team = self.get_team()
        lookup.require_action(team, request.user, "delete")
        services.delete_team(actor=request.user, team=team)
        messages.success(request, f"Team “{team.slug}” deleted.")
        return redirect("org-teams", self.organization.slug)


class TeamMemberAddView(TeamView):
    """Add a member of the organization to the team (admins)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        team = self.get_team()
        lookup.require_action(team, request.user, "change")
        form = TeamMemberForm(request.POST)
        if form.is_valid():
            handle = form.cleaned_data["handle"].strip().lower()
            user = get_user_model().objects.filter(handle=handle).first()
            if user is None:
                form.add_error("handle", f"There is no user “{handle}”.")
            else:
                try:
                    services.add_team_member(actor=request.user, team=team, user=user)
                except ValidationError as exc:
                    add_service_errors(form, exc)
                else:
                    messages.success(request, f"{user.handle} added to {team.slug}.")
                    return redirect("org-team", self.organization.slug, team.slug)
        return self.render_page(status=400, member_form=form)


class TeamMemberRemoveView(TeamPageMixin, OrganizationAction):
    def next_url(self) -> str:
        return reverse("org-team", args=[self.organization.slug, self.kwargs["team_slug"]])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        team = self.get_team()
        lookup.require_action(team, request.user, "change")
        user = services.team_members(team).filter(handle=kwargs["handle"]).first()
        if user is None:
            messages.error(request, f"{kwargs['handle']} is not in team “{team.slug}”.")
            return self.back()
        try:
            services.remove_team_member(actor=request.user, team=team, user=user)
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(request, f"{user.handle} removed from {team.slug}.")
        return self.back()


# -- invitations ----------------------------------------------------------------------------------------------
class InvitationsView(OrganizationPage):
    """/orgs/<slug>/invitations/: admins invite by e-mail and revoke open invitations."""

    template_name = "organizations/invitations.html"
    required_role = Invitation.access.role_for("view")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        invitations = (
            Invitation.objects.restrict(self.request.user, "view")
            .filter(organization=self.organization)
            .select_related("invited_by", "accepted_by")
        )
        context["page_obj"] = paginate(self.request, invitations.order_by("-created_at"))
        context.setdefault("form", InvitationForm(up_to=self.my_role))
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = InvitationForm(request.POST, up_to=self.my_role)
        if form.is_valid():
            try:
                invitation = services.create_invitation(
                    actor=request.user,
                    organization=self.organization,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Invitation sent to {invitation.email} as {invitation.get_role_display()}; "
                    f"it expires {invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
                )
                return redirect("org-invitations", self.organization.slug)
        return self.render_page(status=400, form=form)


class InvitationRevokeView(OrganizationAction):
    required_role = Invitation.access.role_for("delete")

    def next_url(self) -> str:
        return reverse("org-invitations", args=[self.organization.slug])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        invitation = get_allowed_or_403(
            Invitation.objects.filter(organization=self.organization).select_related("organization"),
            request.user,
            "delete",
            uuid=kwargs["uuid"],
        )
        try:
            services.revoke_invitation(actor=request.user, invitation=invitation)
        except ValidationError as exc:
            return self.refused(exc)
        messages.success(request, f"The invitation of {invitation.email} was revoked.")
        return self.back()


def invitation_accept(request: HttpRequest, key: str) -> HttpResponse:
    """/invitations/<key>/: the invited person sees the organization and role, and accepts.

    The key itself is the proof of invitation, so the page shows what it opens whatever the organization's
    visibility; accepting needs the invited address, verified, on the signed-in account (the service checks).
    Opened signed out, the page says what the invitation is and offers to sign in or to create an account, both
    coming back here; the key is also kept in the session, so that signing in after verifying a new address (the
    link in the mail) comes back here too (``AccountAdapter.get_login_redirect_url``).
    """
    invitation = services.invitation_for_key(key)
    if not request.user.is_authenticated:
        if request.method != "GET" or invitation is None:
            return redirect_to_login(request.get_full_path())
        request.session[PENDING_INVITATION_KEY] = key
        return render(request, "organizations/invitation_accept.html", {"invitation": invitation, "key": key})
    errors: list[str] = []
    if request.method == "POST":
        try:
            membership = services.accept_invitation(user=request.user, key=key)
        except ValidationError as exc:
            errors = _messages_from(exc)
        else:
            request.session.pop(PENDING_INVITATION_KEY, None)
            messages.success(
                request,
                f"Welcome to “{membership.organization.name}”: you joined as {membership.get_role_display()}.",
            )
            return redirect("org-overview", membership.organization.slug)
    if invitation is None or invitation.status != "pending":
        request.session.pop(PENDING_INVITATION_KEY, None)
    status = 404 if invitation is None else (400 if errors else 200)
    return render(
        request,
        "organizations/invitation_accept.html",
        {"invitation": invitation, "errors": errors, "key": key},
        status=status,
    )


# -- tokens bound to the organization -------------------------------------------------------------------------
class TokensView(OrganizationPage):
    """/orgs/<slug>/tokens/: admins see and revoke the tokens bound to the organization."""

    template_name = "organizations/tokens.html"
    required_role = ApiToken.access.role_for("view")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        tokens = (
            ApiToken.objects.restrict(self.request.user, "view")
            .filter(organization=self.organization)
            .select_related("user", "organization")
        )
        context["page_obj"] = paginate(self.request, tokens.order_by("-created_at"))
        return context


class TokenRevokeView(OrganizationAction):
    required_role = ApiToken.access.role_for("delete")

    def next_url(self) -> str:
        return reverse("org-tokens", args=[self.organization.slug])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = get_allowed_or_403(
            ApiToken.objects.filter(organization=self.organization).select_related("user", "organization"),
            request.user,
            "delete",
            uuid=kwargs["uuid"],
        )
        revoke_api_token(token=token, by=request.user)
        messages.success(request, f"The token “{token.name}” of {token.user.handle} was revoked.")
        return self.back()


# -- audit trail ----------------------------------------------------------------------------------------------
AUDIT_FILTERS = ("action", "actor", "since", "until", "search")


class AuditView(OrganizationPage):
    """/orgs/<slug>/audit/: admins read the organization's audit trail, filter it, and export it as a job."""

    template_name = "organizations/audit.html"
    organization_action = AUDIT  # as the audit API: the trail is for the organization's admins

    def filterset(self):
        from apps.audit.filtersets import AuditEventFilterSet
        from apps.audit.models import AuditEvent

        events = AuditEvent.objects.filter(organization=self.organization).select_related("actor")
        data = {name: self.request.GET[name] for name in AUDIT_FILTERS if self.request.GET.get(name)}
        return AuditEventFilterSet(data or None, queryset=events), data

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        filterset, used = self.filterset()
        valid = not filterset.is_bound or filterset.is_valid()
        events = filterset.qs.order_by("-seq") if valid else filterset.queryset.none()
        return self.render_page(
            status=200 if valid else 400,
            filter=filterset,
            filters_used=used,
            page_obj=paginate(request, events, per_page=50),
        )


class AuditExportView(OrganizationAction):
    """Start an "audit.export" job with the page's filters; htmx gets the progress fragment, others the job page."""

    organization_action = AUDIT

    def next_url(self) -> str:
        return reverse("org-audit", args=[self.organization.slug])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from rest_framework.exceptions import ValidationError as ApiValidationError

        from apps.core.job_services import job_task_for, start_job

        task = job_task_for("audit.export")
        require_organization_action(request.user, self.organization, task.organization_action)
        filters = {name: request.POST[name] for name in AUDIT_FILTERS if request.POST.get(name)}
        params = {"format": request.POST.get("format", "csv"), "filters": filters}
        try:
            params = task.clean_params(params, organization=self.organization, user=request.user)
        except ApiValidationError as exc:
            problems = exc.detail if isinstance(exc.detail, dict) else {"params": exc.detail}
            text = "; ".join(
                f"{field}: {' '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
                for field, msgs in problems.items()
            )
            if request.headers.get("HX-Request"):
                return HttpResponse(
                    format_html('<div class="alert alert-danger">The export was refused — {}</div>', text), status=400
                )
            messages.error(request, f"The export was refused — {text}")
            return self.back()
        job = start_job(kind=task.kind, organization=self.organization, creator=request.user, params=params)
        if request.headers.get("HX-Request"):
            return render(request, "core/_job_progress.html", {"job": job})
        messages.info(request, "Export started.")
        return redirect("job-detail", job.uuid)
