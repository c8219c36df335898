"""The one namespace shared by user handles and organization slugs (DESIGN.md)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){1,38}$")
SLUG_RULES = "2 to 39 characters: lowercase letters, digits and single hyphens, not at the start or end"

# Words that would shadow a top-level URL or mislead users; compared case-insensitively.
RESERVED_NAMES = frozenset(
    """
    about account accounts admin administrator api apis app apps assets audit auth billing blog
    dashboard docs download downloads explore graphql help home invitations invite jobs login logout
    marketplace media metrics models new null none orgs organizations portal pricing registries root
    search security settings signup static status support system team teams terms token tokens
    undefined user users v1 v2 www gpux anonymous superuser staff
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def validate_namespace_slug(value: str) -> None:
    """Refuse malformed and reserved handles/slugs. Uniqueness is checked by the caller (it knows the exclusion)."""
    if not isinstance(value, str) or not SLUG_PATTERN.match(value):
        raise ValidationError(f"Enter a valid name: {SLUG_RULES}.", code="invalid_slug")
    if value.lower() in RESERVED_NAMES:
        raise ValidationError(f"“{value}” is reserved; choose another name.", code="reserved")


def namespace_is_taken(value: str, *, exclude_organization_id: int | None = None) -> bool:
    """True when an organization (personal ones included, so also a user's handle) already uses ``value``."""
    from apps.organizations.models import Organization

    taken = Organization.objects.filter(slug__iexact=value)
    if exclude_organization_id is not None:
        taken = taken.exclude(pk=exclude_organization_id)
    return taken.exists()
