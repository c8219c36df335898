"""django-allauth glue: handles share one namespace with organization slugs; directory problems are said plainly."""

from __future__ import annotations

from dataclasses import dataclass

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.organizations.validators import namespace_is_taken, validate_namespace_slug

# What apps.accounts.ldap leaves on the request when the directory could not answer (or refused to provision).
DIRECTORY_PROBLEM = "directory_problem"


@dataclass
class ProductSite:
    """What allauth's mail templates call the site (``current_site.name`` and ``.domain``)."""

    name: str
    domain: str


class AccountAdapter(DefaultAccountAdapter):
    def clean_username(self, username: str, shallow: bool = False) -> str:
        username = (username or "").strip().lower()
        try:
            validate_namespace_slug(username)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages[0], code=exc.code) from exc
        if not shallow and namespace_is_taken(username):
            raise forms.ValidationError("This handle is already taken by a user or an organization.", code="taken")
        return super().clean_username(username, shallow=shallow)

    def get_login_redirect_url(self, request) -> str:
        """After signing in (a password, or the link that verified a new address), an invitation opened signed out
        in this session is where the person goes back to (a ``next`` in the URL still comes first)."""
        from apps.organizations.models import Invitation
        from apps.organizations.views import PENDING_INVITATION_KEY

        key = request.session.get(PENDING_INVITATION_KEY)
        if key:
            from apps.organizations import services as organization_services

            invitation = organization_services.invitation_for_key(key)
            if invitation is not None and invitation.status == Invitation.Status.PENDING:
                return reverse("invitation-accept", args=[key])
            request.session.pop(PENDING_INVITATION_KEY, None)
        return super().get_login_redirect_url(request)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Mails greet from the product (“Hello from GPUX Portal!”), not from the host name a request came to."""
        from allauth.core import context as allauth_context

        request = allauth_context.request
        host = request.get_host() if request is not None else ""
        site = ProductSite(name=settings.PORTAL_NAME, domain=host or settings.PORTAL_NAME)
        super().send_mail(template_prefix, email, {"current_site": site, **context})

    def validation_error(self, code: str, *args) -> ValidationError:
        """A failed sign-in says when the directory was the problem, rather than "wrong password"."""
        problem = getattr(self.request, DIRECTORY_PROBLEM, None)
        if problem and code.endswith("_password_mismatch"):
            return ValidationError(problem, code="directory_problem")
        return super().validation_error(code, *args)
