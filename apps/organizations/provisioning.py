"""People an organization's identity provider brings in: just-in-time accounts, memberships and teams from IdP
groups, and deprovisioning. SAML sign-in and SCIM both go through here (docs/admin/sso-saml.md, scim.md).

Who an IdP may sign in or create is bounded, because an organization's admins control its IdP:

* an identity the organization's IdP already knows (its SAML NameID or SCIM resource) is that user;
* otherwise the asserted e-mail address must be at one of the organization's *verified* domains: then it links
  to the existing account with that address, or a new account is made. An IdP can never claim an address at
  a domain its organization has not proved it controls (that would let an org admin take over anyone's account).

Roles and teams follow the IdP's groups at each sign-in (``IdpGroupMapping``): the highest mapped role wins, or
the organization's default role; a person whose groups give no role loses their membership. An owner's role is
never changed by the IdP (owners are appointed in the portal and keep their break-glass sign-in). Teams named by
any mapping are managed: people join and leave them with their groups; other teams are left alone. Every change
is an audit event in the organization's chain, with ``source`` in its metadata and the IdP as actor label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from apps.audit.services import record_event
from apps.core.access import Role
from apps.organizations.models import (
    IdpGroupMapping,
    Membership,
    Organization,
    OrganizationIdentity,
    SamlSettings,
    Team,
)
from apps.organizations.services import _lock_organization, _revoke_bound_tokens
from apps.organizations.sso import verified_domain_of
from apps.organizations.validators import RESERVED_NAMES, namespace_is_taken


class IdentityRefused(PermissionDenied):
    """The IdP vouched for someone the organization may not let in (the message says why; nothing was changed)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Source:
    """Who is acting: ``kind`` is "saml" or "scim"; ``label`` goes into the audit events' actor label."""

    kind: str
    label: str


# -- accounts -------------------------------------------------------------------------------------------------
def _handle_from(email: str) -> str:
    """A free handle from the address's local part: lowercase, hyphens for the rest, numbered when taken."""
    local = email.split("@", 1)[0].lower()
    base = re.sub(r"[^a-z0-9]+", "-", local).strip("-")[:32] or "user"
    if len(base) < 2:
        base = f"{base}-user"
    candidate, n = base, 1
    while candidate in RESERVED_NAMES or namespace_is_taken(candidate):
        n += 1
        candidate = f"{base[: 32 - len(str(n))]}-{n}"
    return candidate


def provision_user(*, email: str, name: str = "") -> Any:
    """A new active account for ``email`` (verified: the IdP vouched for it), with an unusable password: it signs in
    through the IdP (or sets a password through "forgot password", which proves the mailbox)."""
    from allauth.account.models import EmailAddress

    user = get_user_model().objects.create_user(email=email, handle=_handle_from(email), name=name[:150])
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


def _user_with_email(email: str) -> Any | None:
    from allauth.account.models import EmailAddress

    users = get_user_model().objects
    user = users.filter(email__iexact=email).first()
    if user is None:
        address = EmailAddress.objects.filter(email__iexact=email, verified=True).select_related("user").first()
        user = address.user if address else None
    return user


def resolve_identity(
    *, organization: Organization, email: str, name: str = "", name_id: str = "", create: bool = True
) -> tuple[Any, OrganizationIdentity]:
    """The user (and the organization's record of them) an IdP vouches for: by NameID, else by an address at a
    verified domain (linking an existing account or, with ``create``, making one). ``IdentityRefused`` otherwise."""
    identity = None
    if name_id:
        identity = (
            OrganizationIdentity.objects.select_related("user")
            .filter(organization=organization, name_id=name_id)
            .first()
        )
    if identity is None and email:
        identity = (
            OrganizationIdentity.objects.select_related("user")
            .filter(organization=organization, user__email__iexact=email)
            .first()
        )
    if identity is not None:
        user = identity.user
    else:
        if not email or "@" not in email:
            raise IdentityRefused("The identity provider sent no e-mail address.", "no_email")
        if not verified_domain_of(organization, email):
            raise IdentityRefused(
                f"{email} is not at a domain “{organization.slug}” has verified: an organization's identity provider "
                "may sign in only addresses at its verified domains.",
                "domain_not_verified",
            )
        user = _user_with_email(email)
        provisioned = False
        if user is None:
            if not create:
                raise IdentityRefused(f"There is no account for {email}.", "unknown_user")
            user = provision_user(email=email, name=name)
            provisioned = True
        identity = OrganizationIdentity.objects.create(
            organization=organization, user=user, name_id=name_id, user_name=email, provisioned=provisioned
        )
    if not user.is_active and not identity.provisioned:
        raise IdentityRefused("This account is disabled.", "user_inactive")
    if name_id and identity.name_id != name_id:
        identity.name_id = name_id
        identity.save(update_fields=["name_id", "updated_at"])
    return user, identity


# -- memberships from groups ----------------------------------------------------------------------------------
def default_role_of(organization: Organization) -> Role | None:
    saml = SamlSettings.objects.filter(organization=organization).values_list("default_role", flat=True).first()
    if saml is None and not SamlSettings.objects.filter(organization=organization).exists():
        return Role.MEMBER
    return Role(saml) if saml is not None else None


def role_from_groups(organization: Organization, groups: list[str]) -> tuple[Role | None, set[int], set[int]]:
    """(role, wanted team ids, managed team ids) for a person in ``groups``."""
    mappings = list(IdpGroupMapping.objects.filter(organization=organization))
    matched = [m for m in mappings if m.idp_group in set(groups)]
    roles = [Role(m.role) for m in matched if m.role is not None]
    role = max(roles) if roles else default_role_of(organization)
    wanted = {m.team_id for m in matched if m.team_id}
    managed = {m.team_id for m in mappings if m.team_id}
    return role, wanted, managed


def _event(source: Source, organization: Organization, action: str, target: Any, user: Any, **extra: Any) -> None:
    metadata = {"user": user.handle, "source": source.kind, **extra.pop("metadata", {})}
    record_event(
        action=action,
        organization=organization,
        actor=None,
        actor_label=source.label,
        target=target,
        metadata=metadata,
        **extra,
    )


def end_membership(*, organization: Organization, user: Any, source: Source, reason: str) -> bool:
    """Remove ``user`` from the organization (teams, bound tokens) as the IdP asked; owners stay. True if removed."""
    membership = Membership.objects.select_for_update().filter(organization=organization, user=user).first()
    if membership is None or membership.role == Role.OWNER:
        return False
    teams = [team.slug for team in Team.objects.filter(organization=organization, group__user=user)]
    for team in Team.objects.filter(organization=organization, group__user=user).select_related("group"):
        team.group.user_set.remove(user)
    _event(
        source, organization, "member.removed", membership, user,
        diff={"role": [Role(membership.role).label, None]}, metadata={"teams": teams, "reason": reason},
    )  # fmt: skip
    membership.delete()
    _revoke_bound_tokens(organization=organization, user=user, by=None)
    return True


def apply_role(*, organization: Organization, user: Any, role: Role | None, source: Source) -> Membership | None:
    """Give ``user`` ``role`` in the organization (create the membership, change it, or end it when None)."""
    membership = Membership.objects.select_for_update().filter(organization=organization, user=user).first()
    if role is None:
        if membership is not None and membership.role != Role.OWNER:
            end_membership(organization=organization, user=user, source=source, reason="no mapped group")
            return None
        return membership
    if membership is None:
        membership = Membership.objects.create(organization=organization, user=user, role=role)
        _event(source, organization, "member.added", membership, user, diff={"role": [None, role.label]})
    elif membership.role != role and membership.role != Role.OWNER:
        old = Role(membership.role)
        membership.role = role
        membership.save(update_fields=["role"])
        _event(source, organization, "member.role_changed", membership, user, diff={"role": [old.label, role.label]})
    return membership


def apply_teams(*, organization: Organization, user: Any, wanted: set[int], managed: set[int], source: Source) -> None:
    """Put ``user`` in the ``wanted`` teams and out of the other ``managed`` ones."""
    current = set(Team.objects.filter(organization=organization, group__user=user).values_list("pk", flat=True))
    for team in Team.objects.filter(pk__in=(wanted - current) | ((managed - wanted) & current)).select_related("group"):
        if team.pk in wanted:
            team.group.user_set.add(user)
            _event(source, organization, "team.member_added", team, user, diff={"members": [None, user.handle]})
        else:
            team.group.user_set.remove(user)
            _event(source, organization, "team.member_removed", team, user, diff={"members": [user.handle, None]})


@transaction.atomic
def sign_in_through_idp(
    *, organization: Organization, email: str, name: str = "", groups: list[str] | None = None, name_id: str = "",
    source: Source,
) -> Any:  # fmt: skip
    """The user an IdP's sign-in stands for, provisioned and with roles and teams from ``groups``; None when the
    groups give no role (a membership they no longer give has then been ended, and that change is kept).

    ``IdentityRefused`` (nothing changed) when the address is not at a verified domain, the account is disabled
    or the person was deprovisioned.
    """
    organization = _lock_organization(organization)
    user, identity = resolve_identity(organization=organization, email=email, name=name, name_id=name_id)
    if not identity.active:
        raise IdentityRefused(f"{email} has been deprovisioned from “{organization.slug}”.", "deprovisioned")
    role, wanted, managed = role_from_groups(organization, list(groups or []))
    membership = apply_role(organization=organization, user=user, role=role, source=source)
    if membership is None:
        return None
    apply_teams(organization=organization, user=user, wanted=wanted, managed=managed, source=source)
    identity.last_sign_in_at = timezone.now()
    if name and identity.display_name != name:
        identity.display_name = name[:255]
    identity.save(update_fields=["last_sign_in_at", "display_name", "updated_at"])
    return user
