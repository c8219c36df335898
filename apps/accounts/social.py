"""django-allauth's social accounts (OpenID Connect, GitHub, GitLab): the portal's rules for who they sign in as.

* An account is linked to an existing portal user only through an address the provider says it verified
  (allauth's e-mail authentication, ``SOCIALACCOUNT_EMAIL_AUTHENTICATION``): allauth then wipes a password set on
  that user while its address was unverified, so whoever registered it first cannot sign in beside the owner.
  An unverified address never reaches an existing account: allauth sends the person to the sign-up form, where
  the address is refused as taken.
* A new user gets a valid, free handle made from the provider's username claim, name or address (the same rule as
  LDAP and SAML provisioning), their name, and, by post_save, their personal organization.
* After each sign-in through an OpenID Connect provider with a groups claim, the groups decide the person's roles
  and teams in the organizations mapped for ``oidc:<provider id>`` (apps.organizations.group_sync).
"""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.signals import user_logged_in
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import Http404

from apps.accounts.provisioning import suggest_handle

logger = logging.getLogger(__name__)

SAVE_ATTEMPTS = 3


def _hints(user: Any, data: dict[str, Any]) -> list[str]:
    return [data.get("username") or "", user.name or "", data.get("email") or user.email or ""]


class ProviderNotConfigured(SocialApp.DoesNotExist, Http404):
    """No app is configured for the provider a URL names (``/accounts/github/login/`` on a portal without GitHub):
    allauth's callers still catch it as ``DoesNotExist``, and a request that reaches it answers 404, not 500."""


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(self, request: Any, provider: Any, client_id: Any = None) -> Any:
        try:
            return super().get_app(request, provider, client_id=client_id)
        except SocialApp.DoesNotExist:
            raise ProviderNotConfigured(f"No {provider} sign-in is configured on this portal.") from None

    def populate_user(self, request: Any, sociallogin: Any, data: dict[str, Any]) -> Any:
        user = super().populate_user(request, sociallogin, data)
        full = " ".join(part for part in (data.get("first_name"), data.get("last_name")) if part)
        user.name = str(data.get("name") or full or "")[:150]
        user.handle = suggest_handle(_hints(user, data))
        sociallogin._portal_hints = data  # for a retry in save_user
        return user

    def on_authentication_error(
        self, request: Any, provider: Any, error: Any = None, exception: Any = None, extra_context: Any = None
    ) -> None:
        """A refused sign-in: the person sees allauth's generic page (401); operators see why, in the log and in
        the platform's audit trail (``auth.sso_failed``)."""
        from apps.audit.services import record_event

        reason = str(exception) if exception else str(error or "unknown")
        provider_id = getattr(getattr(provider, "app", None), "provider_id", None) or getattr(provider, "id", "")
        logger.warning("sign-in through %s refused: %s", provider_id, reason)
        record_event(
            action="auth.sso_failed",
            actor_label=f"identity provider: {provider_id}",
            metadata={"provider": provider_id, "error": str(error or ""), "reason": reason[:1000]},
        )
        super().on_authentication_error(
            request, provider, error=error, exception=exception, extra_context=extra_context
        )

    def save_user(self, request: Any, sociallogin: Any, form: Any = None) -> Any:
        """Save the new user; a handle someone took in the meantime gets the next free one (no 500)."""
        for attempt in range(SAVE_ATTEMPTS):
            try:
                with transaction.atomic():
                    return super().save_user(request, sociallogin, form)
            except IntegrityError:
                if form is not None or attempt == SAVE_ATTEMPTS - 1:
                    raise
                user = sociallogin.user
                user.pk = user.id = None
                sociallogin.account.pk = sociallogin.account.id = None
                for address in sociallogin.email_addresses:
                    address.pk = address.id = None
                user.handle = suggest_handle(_hints(user, getattr(sociallogin, "_portal_hints", {})))
        raise AssertionError("unreachable")


@receiver(user_logged_in, dispatch_uid="accounts.social.sync_oidc_groups")
def sync_groups_after_oidc_sign_in(sender: Any, request: Any, user: Any, sociallogin: Any = None, **kwargs: Any):
    """The provider's groups claim decides roles and teams in the organizations mapped for it."""
    from apps.accounts.oidc.provider import PortalOpenIDConnectProvider
    from apps.organizations.group_sync import apply_group_mappings

    if sociallogin is None:
        return
    provider = sociallogin.account.get_provider(request)
    if not isinstance(provider, PortalOpenIDConnectProvider) or not provider.claim("groups"):
        return
    groups = provider.groups_of(sociallogin.account.extra_data or {})
    if groups is None:
        # No groups claim at all (not granted, not configured at the provider): keep what the person has.
        logger.warning(
            "OpenID Connect provider %s sent no %s claim", provider.app.provider_id, provider.claim("groups")
        )
        return
    apply_group_mappings(user=user, source=f"oidc:{provider.app.provider_id}", groups=groups)
