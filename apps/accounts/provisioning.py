"""Users that an identity provider vouches for: found, linked or created at sign-in, deactivated when it says so.

One workflow for every provider that is not an allauth social account: the operator's LDAP directory now, SAML and
SCIM per organization later. A provider describes the person as an :class:`ExternalProfile`;
:func:`provision_user` answers the portal user:

1. the user already linked to ``(source, subject)`` (an :class:`~apps.accounts.models.ExternalIdentity`); their
   name, and their e-mail address when the source vouches for the new one and nobody else has it, follow the source;
2. else the user with that e-mail address, *only when the source vouches for the address* (``email_verified``):
   the identity is linked to them. An address the source does not vouch for never reaches an existing account;
3. else a new user: a handle made from the source's hints (valid, free, unique), no password (they sign in
   through the source), their e-mail address verified when the source vouches for it, and (post_save) their
   personal organization.

Events go to the platform chain: ``user.provisioned``, ``identity.linked``, ``user.deactivated``,
``user.reactivated``. Group memberships are the organizations' business: apps.organizations.group_sync.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ExternalIdentity, User
from apps.audit.services import record_event
from apps.organizations.validators import namespace_is_taken, validate_namespace_slug

HANDLE_MAX_LENGTH = 39
CREATE_ATTEMPTS = 5


class ProvisioningRefused(Exception):
    """The provider vouched for someone the portal will not sign in; the message is for the person."""


@dataclass(frozen=True)
class ExternalProfile:
    """What an identity provider says about a person at sign-in."""

    source: str
    subject: str
    email: str
    email_verified: bool
    name: str = ""
    handle_hints: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)


def _slug(text: str) -> str:
    """``text`` as a handle-shaped string: ASCII lowercase letters, digits and single hyphens (maybe empty)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:HANDLE_MAX_LENGTH].strip("-")


def _usable(handle: str) -> bool:
    try:
        validate_namespace_slug(handle)
    except ValidationError:
        return False
    return not namespace_is_taken(handle)


def suggest_handle(hints: Iterable[str]) -> str:
    """A valid handle nobody uses, from the first usable hint (``ada``, else ``ada-2``, ``ada-3``...).

    Hints are tried in order, each made handle-shaped (``Ödön Ödd!!`` → ``odon-odd``; an e-mail address counts
    by its local part). With no usable hint the handle is ``user-`` and random hex.
    """
    bases = []
    for hint in hints:
        if not hint:
            continue
        base = _slug(hint.split("@", 1)[0] if "@" in hint else hint)
        if len(base) >= 2 and base not in bases:
            bases.append(base)
    for base in bases:
        if _usable(base):
            return base
    for base in bases:
        for n in range(2, 100):
            suffix = f"-{n}"
            candidate = base[: HANDLE_MAX_LENGTH - len(suffix)].rstrip("-") + suffix
            if _usable(candidate):
                return candidate
    while True:
        candidate = f"user-{secrets.token_hex(4)}"
        if _usable(candidate):
            return candidate


def _set_verified_address(user: User, email: str, verified: bool) -> None:
    """Make ``email`` the user's primary allauth address (verified when the source vouches for it)."""
    from allauth.account.models import EmailAddress

    address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
    if address is None:
        EmailAddress.objects.filter(user=user, primary=True).update(primary=False)
        EmailAddress.objects.create(user=user, email=email, primary=True, verified=verified)
        return
    updates = []
    if verified and not address.verified:
        address.verified = True
        updates.append("verified")
    if not address.primary:
        EmailAddress.objects.filter(user=user, primary=True).update(primary=False)
        address.primary = True
        updates.append("primary")
    if updates:
        address.save(update_fields=updates)


def _touch_identity(identity: ExternalIdentity, profile: ExternalProfile, email: str) -> None:
    identity.email = email
    identity.groups = sorted(profile.groups)
    identity.attributes = dict(profile.attributes)
    identity.last_seen_at = timezone.now()
    identity.save(update_fields=["email", "groups", "attributes", "last_seen_at"])


def _follow_source(user: User, identity: ExternalIdentity, profile: ExternalProfile, email: str) -> None:
    """A known person signed in again: their name, e-mail address and active state follow the source."""
    from apps.accounts.services import replace_email_address

    actor = f"identity provider: {profile.source}"
    if identity.deactivated_at is not None:
        if not user.is_active:
            User.objects.filter(pk=user.pk).update(is_active=True)
            user.is_active = True
            record_event(action="user.reactivated", actor_label=actor, target=user, metadata={"source": profile.source})
        identity.deactivated_at = None
        identity.save(update_fields=["deactivated_at"])
    if profile.name and profile.name != user.name:
        old = user.name
        User.objects.filter(pk=user.pk).update(name=profile.name[:150])
        user.name = profile.name[:150]
        record_event(action="user.updated", actor_label=actor, target=user, diff={"name": [old, user.name]})
    address_is_free = not User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists()
    if email != user.email and profile.email_verified and address_is_free:
        old = user.email
        User.objects.filter(pk=user.pk).update(email=email)
        user.email = email
        replace_email_address(user=user, old_email=old, by=None)
        _set_verified_address(user, email, verified=True)


def provision_user(profile: ExternalProfile) -> tuple[User, bool]:
    """The portal user for ``profile`` (see the module docstring) and whether it was created now.

    Raises :class:`ProvisioningRefused` when the address belongs to an account the source may not claim.
    """
    email = (profile.email or "").strip().lower()
    if not email or "@" not in email:
        raise ProvisioningRefused(
            "Your identity provider did not give an e-mail address, which the portal needs: ask its administrator."
        )
    for _ in range(CREATE_ATTEMPTS):
        try:
            return _provision(profile, email)
        except IntegrityError:
            # Someone took the handle (or the same person signed in twice at once): look again.
            continue
    raise ProvisioningRefused("Your account could not be set up just now; please sign in again.")


@transaction.atomic
def _provision(profile: ExternalProfile, email: str) -> tuple[User, bool]:
    identity = (
        ExternalIdentity.objects.select_for_update()
        .select_related("user")
        .filter(source=profile.source, subject=profile.subject)
        .first()
    )
    if identity is not None:
        _follow_source(identity.user, identity, profile, email)
        _touch_identity(identity, profile, email)
        return identity.user, False

    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        if not profile.email_verified:
            raise ProvisioningRefused(
                "An account with this e-mail address already exists, and your identity provider does not vouch for "
                "the address: sign in with that account's password instead."
            )
        _set_verified_address(existing, email, verified=True)
        identity = ExternalIdentity.objects.create(user=existing, source=profile.source, subject=profile.subject)
        _touch_identity(identity, profile, email)
        record_event(
            action="identity.linked",
            actor_label=f"identity provider: {profile.source}",
            target=existing,
            metadata={"source": profile.source, "subject": profile.subject, "email": email},
        )
        return existing, False

    # A handle taken between suggest_handle() and the INSERT raises IntegrityError: provision_user() tries again.
    handle = suggest_handle([*profile.handle_hints, email])
    user = User.objects.create_user(email=email, handle=handle, password=None, name=(profile.name or "")[:150])
    _set_verified_address(user, email, verified=profile.email_verified)
    identity = ExternalIdentity.objects.create(user=user, source=profile.source, subject=profile.subject)
    _touch_identity(identity, profile, email)
    record_event(
        action="user.provisioned",
        actor_label=f"identity provider: {profile.source}",
        target=user,
        metadata={"source": profile.source, "subject": profile.subject, "handle": handle, "email": email},
    )
    return user, True


@transaction.atomic
def deactivate_external_user(*, source: str, subject: str, reason: str) -> User | None:
    """The source says the person's account is disabled: deactivate the linked user (None when there is none).

    An inactive user's sessions end at their next request and their API tokens stop working. Only the source's
    next successful sign-in reactivates them (``ExternalIdentity.deactivated_at``).
    """
    identity = (
        ExternalIdentity.objects.select_for_update()
        .select_related("user")
        .filter(source=source, subject=subject)
        .first()
    )
    if identity is None:
        return None
    user = identity.user
    if identity.deactivated_at is None and user.is_active:
        identity.deactivated_at = timezone.now()
        identity.save(update_fields=["deactivated_at"])
        User.objects.filter(pk=user.pk).update(is_active=False)
        from apps.core.shortlived import invalidate_on_commit

        invalidate_on_commit()  # cached token and access decisions (apps/core/shortlived.py)
        user.is_active = False
        record_event(
            action="user.deactivated",
            actor_label=f"identity provider: {source}",
            target=user,
            metadata={"source": source, "subject": subject, "reason": reason},
        )
    return user
