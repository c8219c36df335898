from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from apps.accounts import checks, signals  # noqa: F401
        from apps.accounts.mfa import MfaGate
        from apps.accounts.sso import SsoGate
        from apps.core.gates import register_organization_gate

        # Enforced SSO first (a page under /orgs/<slug>/, before the organization is looked up), then MFA.
        register_organization_gate(SsoGate())
        register_organization_gate(MfaGate())
