"""Organizations, their members (with roles), teams and invitations; per-organization SSO (SAML), verified
e-mail domains and SCIM provisioning."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.core.access import AccessPolicy, Role, Visibility
from apps.core.models import OwnedModel
from apps.organizations.validators import validate_namespace_slug


class Organization(OwnedModel):
    """An owner of models, registries and jobs. Every user also has a personal one named by their handle."""

    # Besides what is done to the organization itself, what is done in it (apps/core/lookup.py): "create" objects
    # in it (members), read its "audit" trail and run its "administer" jobs (admins).
    access: ClassVar[AccessPolicy] = AccessPolicy(
        organization_field=None,
        visibility_field="visibility",
        roles={
            "view": Role.VIEWER,
            "change": Role.OWNER,
            "delete": Role.OWNER,
            "run": Role.MEMBER,
            "create": Role.MEMBER,
            "audit": Role.ADMIN,
            "administer": Role.ADMIN,
        },
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.CharField(max_length=39, unique=True, validators=[validate_namespace_slug])
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    is_personal = models.BooleanField(default=False, editable=False)
    personal_owner = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="personal_organization",
        editable=False,
    )
    require_mfa = models.BooleanField(default=False, help_text="Members must have two-factor authentication on.")
    require_sso = models.BooleanField(
        default=False,
        help_text="Members reach the organization only with a session signed in through its identity provider "
        "(owners keep a local sign-in with two-factor authentication).",
    )
    storage_quota_bytes = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Bytes of model files the organization may store; empty: DEFAULT_STORAGE_QUOTA_BYTES (0: unlimited).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        permissions = [("run_organization", "Can run models as this organization")]

    def __str__(self) -> str:
        return self.slug


class OrganizationObjectPermissionBase(models.Model):
    """A grant of one permission on one object to every member of an organization, as their role there allows.

    The sibling of django-guardian's direct-FK tables (``UserObjectPermissionBase``, ``GroupObjectPermissionBase``):
    an app declares ``<Model>OrganizationObjectPermission(OrganizationObjectPermissionBase)`` with its
    ``content_object`` foreign key, and ``restrict()`` reads it (apps/core/querysets.py). The permission is one of
    guardian's (``view_model``, ``run_model``, ...); a viewer of the grantee organization gets view from any grant,
    a member gets run and change from grants of those (apps/core/access.py, ``ORGANIZATION_GRANT_ROLES``).
    """

    permission = models.ForeignKey("auth.Permission", on_delete=models.CASCADE)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["content_object", "organization", "permission"], name="%(app_label)s_%(class)s_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.permission.codename} on {self.content_object_id} to organization {self.organization_id}"


class OrganizationUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Organization, on_delete=models.CASCADE)


class OrganizationGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Organization, on_delete=models.CASCADE)


class Membership(OwnedModel):
    """A user's role in an organization. The last owner can neither leave nor be demoted."""

    # Who belongs to an organization is as visible as the organization itself (a public one shows its members).
    access: ClassVar[AccessPolicy] = AccessPolicy(
        visibility_field="organization__visibility",
        roles={"view": Role.VIEWER, "change": Role.ADMIN, "delete": Role.ADMIN},
        grants=False,
    )

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    managed_by = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="The identity provider whose groups decide this membership (e.g. ldap); empty: people manage it.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "-role", "user__handle"]
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="unique_membership")]
        indexes = [models.Index(fields=["user", "organization", "role"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.get_role_display()})"


class Team(OwnedModel):
    """A named group of an organization's members. It is an auth Group, so guardian grants reach it."""

    # Teams are as visible as their organization (a public one shows its teams), like GitHub's.
    access: ClassVar[AccessPolicy] = AccessPolicy(
        visibility_field="organization__visibility",
        roles={"view": Role.VIEWER, "change": Role.ADMIN, "delete": Role.ADMIN},
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team", editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "slug"]
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="unique_team_slug")]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class TeamUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Team, on_delete=models.CASCADE)


class TeamGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Team, on_delete=models.CASCADE)


class GroupMapping(OwnedModel):
    """A group at an identity provider, mapped onto a role in an organization and, optionally, one of its teams.

    At each sign-in through ``source`` the user's groups decide, in every organization that ``source`` maps: their
    role (the highest of the matching rows; no matching row removes a membership the source made) and their place
    in each team the source maps (apps/organizations/group_sync.py). ``group`` is compared case-insensitively:
    an LDAP group's DN, or a group's name in an OpenID Connect or SAML groups claim.
    """

    # Mapping groups is an organization setting: owners change it (a mapping may grant the owner role).
    access: ClassVar[AccessPolicy] = AccessPolicy(
        roles={"view": Role.ADMIN, "change": Role.OWNER, "delete": Role.OWNER},
        grants=False,
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(
        max_length=100, help_text="Where the group comes from: ldap, or oidc:<provider id> for an OpenID Connect one."
    )
    group = models.CharField(
        max_length=500, help_text="LDAP: the group's DN. OpenID Connect: the group's name in the groups claim."
    )
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="group_mappings")
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="group_mappings",
        help_text="Optional: members of the group are also put in this team of the organization.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["source", "organization", "group"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "group", "organization"],
                condition=models.Q(team__isnull=True),
                name="unique_group_mapping_without_team",
            ),
            models.UniqueConstraint(fields=["source", "group", "organization", "team"], name="unique_group_mapping"),
        ]

    def __str__(self) -> str:
        team = f" + team {self.team.slug}" if self.team_id else ""
        return f"{self.source}: {self.group} → {self.organization.slug} ({Role(self.role).label}{team})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        if self.organization_id and self.organization.is_personal:
            errors["organization"] = "A personal organization has one member, its owner: map groups to another one."
        if self.team_id and self.organization_id and self.team.organization_id != self.organization_id:
            errors["team"] = f"Team “{self.team}” is not a team of “{self.organization.slug}”."
        if not (self.group or "").strip():
            errors["group"] = "Name the group."
        if not (self.source or "").strip():
            errors["source"] = "Name where the group comes from (ldap, oidc:<provider id>)."
        if errors:
            raise ValidationError(errors)


def hash_invitation_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Invitation(OwnedModel):
    """An e-mailed invitation to join with a role; accepted only by the invited address, verified, before expiry."""

    access: ClassVar[AccessPolicy] = AccessPolicy(
        roles={"view": Role.ADMIN, "change": Role.ADMIN, "delete": Role.ADMIN},
        grants=False,
    )

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REVOKED = "revoked"
        EXPIRED = "expired"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open invitation per address and organization.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="unique_open_invitation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization}"

    @staticmethod
    def new_key() -> str:
        return secrets.token_urlsafe(32)

    @property
    def status(self) -> str:
        if self.accepted_at:
            return self.Status.ACCEPTED
        if self.revoked_at:
            return self.Status.REVOKED
        if self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.PENDING


# -- single sign-on and provisioning (docs/admin/sso-saml.md, docs/admin/scim.md) ----------------------------------
class SamlSettings(models.Model):
    """An organization's SAML identity provider: its metadata, the attributes to read and what sign-in may do.

    The portal is the service provider; its entity id and ACS URL are per organization
    (``/orgs/<slug>/sso/saml/metadata/`` and ``.../acs/``). Assertions must be signed by a key in the IdP's
    metadata, be addressed to this organization's entity id and come from the IdP's entity id.
    """

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="saml")
    enabled = models.BooleanField(default=False)
    idp_metadata_xml = models.TextField(
        blank=True, help_text="The IdP's SAML metadata (pasted, or fetched from the URL)."
    )
    idp_metadata_url = models.URLField(max_length=2000, blank=True)
    idp_entity_id = models.CharField(max_length=1024, blank=True, editable=False)
    idp_sso_url = models.CharField(max_length=2000, blank=True, editable=False)
    idp_certificate_fingerprints = models.JSONField(default=list, blank=True, editable=False)
    metadata_fetched_at = models.DateTimeField(null=True, blank=True, editable=False)
    email_attribute = models.CharField(max_length=255, default="email")
    name_attribute = models.CharField(max_length=255, default="name", blank=True)
    groups_attribute = models.CharField(max_length=255, default="groups", blank=True)
    default_role = models.PositiveSmallIntegerField(
        choices=[(r.value, r.label) for r in Role if r < Role.OWNER],
        null=True,
        blank=True,
        default=Role.MEMBER,
        help_text="The role of a person the IdP signs in (or SCIM provisions) whose groups match no mapping; empty: "
        "such a person is refused.",
    )
    allow_idp_initiated = models.BooleanField(
        default=False, help_text="Accept sign-ins started at the IdP (unsolicited responses). Off: only the portal's."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SAML settings"
        verbose_name_plural = "SAML settings"

    def __str__(self) -> str:
        return f"SAML of {self.organization}"

    @property
    def is_usable(self) -> bool:
        return self.enabled and bool(self.idp_entity_id and self.idp_metadata_xml)


class SamlAssertionUse(models.Model):
    """An assertion id already accepted by an organization's ACS, kept until the assertion expires: a replay of the
    same assertion finds it and is refused."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    assertion_id = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "assertion_id"], name="unique_assertion_use")]

    def __str__(self) -> str:
        return self.assertion_id


class VerifiedDomain(OwnedModel):
    """An e-mail domain an organization claims. Once verified (a DNS TXT record or a link e-mailed to an address
    at the domain) its addresses are routed to the organization's IdP at sign-in, and the IdP may create and sign
    in accounts with such addresses."""

    access: ClassVar[AccessPolicy] = AccessPolicy(
        roles={"view": Role.ADMIN, "change": Role.ADMIN, "delete": Role.ADMIN}, grants=False
    )

    class Method(models.TextChoices):
        DNS = "dns", "DNS TXT record"
        EMAIL = "email", "e-mail to an address at the domain"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253)
    token = models.CharField(max_length=64, editable=False)
    method = models.CharField(max_length=8, choices=Method.choices, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "domain"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "domain"], name="unique_domain_claim"),
            # Once verified, a domain belongs to one organization only.
            models.UniqueConstraint(
                fields=["domain"], condition=models.Q(verified_at__isnull=False), name="unique_verified_domain"
            ),
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class ScimToken(OwnedModel):
    """The bearer token an organization's IdP provisions it with (SCIM 2.0). Shown once; kept as an HMAC like
    API tokens; one active token per organization (rotating replaces it)."""

    access: ClassVar[AccessPolicy] = AccessPolicy(
        roles={"view": Role.ADMIN, "change": Role.ADMIN, "delete": Role.ADMIN}, grants=False
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="scim_tokens")
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(revoked_at__isnull=True), name="one_active_scim_token"
            )
        ]

    def __str__(self) -> str:
        return f"SCIM token {self.prefix}… of {self.organization}"


class ScimGroup(models.Model):
    """A group pushed by an organization's IdP over SCIM: it is one of the organization's teams."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="scim")  # its SCIM id is the team's uuid
    external_id = models.CharField(max_length=1024, blank=True)
    display_name = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.display_name
