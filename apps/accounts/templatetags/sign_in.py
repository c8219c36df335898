"""What the sign-in page offers, for pages that talk about it (the landing page)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def single_sign_on_offered(context: template.Context) -> bool:
    """Whether signing in through an identity provider works here: the sign-in page shows a provider button (an
    OpenID Connect, GitHub or GitLab provider is configured, as allauth lists them), or "Sign in with your
    organization's SSO" leads somewhere (an organization with SAML turned on has verified a domain)."""
    from allauth.socialaccount.adapter import get_adapter

    from apps.organizations.models import VerifiedDomain

    request = context.get("request")
    if request is not None:
        providers = [
            provider
            for provider in get_adapter().list_providers(request)
            if not provider.uses_apps or not provider.app.settings.get("hidden")
        ]
        if providers:
            return True
    return VerifiedDomain.objects.filter(verified_at__isnull=False, organization__saml__enabled=True).exists()
