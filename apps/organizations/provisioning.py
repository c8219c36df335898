"""People an organization's identity provider brings in through SAML (and SCIM): on the shared services that LDAP
uses too, ``apps.accounts.provisioning.provision_user`` (find, link or create the account) and
``apps.organizations.group_sync.apply_group_mappings`` (roles and teams from groups, audited), with the source
``saml:<organization uuid>`` (``scim:<organization uuid>`` for SCIM).

What an organization's IdP may vouch for is bounded, because the organization's admins control it: an identity
it already knows (its NameID, linked before) is that user; otherwise the address must be at one of the
organization's *verified* domains (docs/admin/sso-saml.md). Only then does it link to an existing account with that
address or make one. An IdP can never reach an account at a domain its organization has not proved it controls.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from apps.accounts.models import ExternalIdentity
from apps.accounts.provisioning import ExternalProfile, ProvisioningRefused, provision_user
from apps.audit.services import record_event
from apps.core.access import Role
from apps.organizations.group_sync import actor_label, apply_group_mappings, resolve_group_mappings
from apps.organizations.models import Membership, Organization, SamlSettings
from apps.organizations.services import _lock_organization
from apps.organizations.sso import verified_domain_of


class IdentityRefused(PermissionDenied):
    """The IdP vouched for someone the organization may not let in (the message says why)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def saml_source(organization: Organization) -> str:
    """The provider name of an organization's SAML IdP in identities and group mappings."""
    return f"saml:{organization.uuid}"


def scim_source(organization: Organization) -> str:
    return f"scim:{organization.uuid}"


def role_from_groups(organization: Organization, groups: list[str]):
    """The role ``groups`` give in ``organization`` through its SAML mappings, else its default role (None: none);
    writes nothing."""
    placement = resolve_group_mappings(source=saml_source(organization), groups=groups).get(organization.pk)
    if placement is not None and placement.role is not None:
        return placement.role
    default = SamlSettings.objects.filter(organization=organization).values_list("default_role", flat=True).first()
    return Role(default) if default is not None else None


def sign_in_through_idp(
    *, organization: Organization, email: str, name: str = "", groups: list[str], name_id: str
) -> Any:
    """The user an organization's SAML sign-in stands for, with roles and teams from ``groups``; None when they have
    no membership afterwards (no mapped group, and none given otherwise). ``IdentityRefused`` when the address is not
    the IdP's to vouch for, or the account is disabled."""
    source = saml_source(organization)
    subject = name_id or email
    known = ExternalIdentity.objects.filter(source=source, subject=subject).exists()
    at_verified_domain = verified_domain_of(organization, email)
    if not known and not at_verified_domain:
        raise IdentityRefused(
            f"{email or 'The address'} is not at a domain “{organization.slug}” has verified: an organization's "
            "identity provider may sign in only addresses at its verified domains.",
            "domain_not_verified",
        )
    profile = ExternalProfile(
        source=source,
        subject=subject,
        email=email,
        email_verified=at_verified_domain,
        name=name,
        groups=tuple(groups),
    )
    try:
        user, _created = provision_user(profile)
    except ProvisioningRefused as exc:
        raise IdentityRefused(str(exc), "refused") from exc
    if not user.is_active:
        raise IdentityRefused("This account is disabled.", "user_inactive")
    apply_group_mappings(user=user, source=source, groups=groups)
    if not Membership.objects.filter(organization=organization, user=user).exists():
        default = SamlSettings.objects.filter(organization=organization).values_list("default_role", flat=True).first()
        if default is None:
            return None
        join_with_default_role(organization=organization, user=user, role=Role(default), source=source)
    return user


@transaction.atomic
def join_with_default_role(*, organization: Organization, user: Any, role: Role, source: str) -> Membership:
    """A person the IdP vouches for whose groups map to nothing joins with the organization's default role, as if
    invited (managed by people: a group mapped later takes it over)."""
    organization = _lock_organization(organization)
    membership, created = Membership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    if created:
        record_event(
            action="member.added",
            organization=organization,
            actor_label=actor_label(source),
            target=membership,
            diff={"role": [None, role.label]},
            metadata={"user": user.handle, "source": source, "reason": "default role"},
        )
    return membership
