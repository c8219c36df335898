"""System checks (``manage.py check``, run at every start): say what enterprise sign-in cannot offer here, and why."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register

from apps.accounts.enterprise import ldap_capability


@register()
def ldap_is_usable(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """LDAP_SERVER_URI is set but python-ldap cannot be loaded: directory accounts cannot sign in."""
    if not getattr(settings, "LDAP_SERVER_URI", None) or getattr(settings, "LDAP_ENABLED", False):
        return []
    capability = ldap_capability()
    if capability.available:
        return []
    return [
        Warning(
            f"LDAP_SERVER_URI is set, but {capability.reason} Only local accounts can sign in.",
            hint="docs/operator/ldap.md, 'Installing'.",
            id="accounts.W001",
        )
    ]
