"""The role table and the per-model access policy that ``restrict()`` reads, and what core knows of identity and
tenancy.

DESIGN.md, "Access control: one mechanism": roles in an organization each include the one before
(viewer < member < admin < owner); an owned object's visibility is private, internal or public; API token scopes
nest (read ⊂ write ⊂ run ⊂ admin).

Core imports no other app (tests/test_import_graph_keeps_the_layers.py): the organizations app builds on core, so
core reaches the organization and membership models through Django's app registry (as ``restrict()``'s SQL reads
their tables), and an API token through the ``ScopedToken`` interface that ``request.auth`` implements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models

# The tenancy models (apps/organizations), named as Django's app registry knows them.
ORGANIZATION_MODEL = "organizations.Organization"
MEMBERSHIP_MODEL = "organizations.Membership"


class Role(models.IntegerChoices):
    VIEWER = 10, "viewer"
    MEMBER = 20, "member"
    ADMIN = 30, "admin"
    OWNER = 40, "owner"

    @classmethod
    def from_name(cls, name: str) -> Role:
        for role in cls:
            if role.label == name:
                return role
        raise ValueError(name)


class Visibility(models.TextChoices):
    PRIVATE = "private", "private"
    INTERNAL = "internal", "internal"
    PUBLIC = "public", "public"


class TokenScope(models.IntegerChoices):
    """Nested scopes of an API token: read ⊂ write ⊂ run ⊂ admin."""

    READ = 10, "read"
    WRITE = 20, "write"
    RUN = 30, "run"
    ADMIN = 40, "admin"

    @classmethod
    def from_name(cls, name: str) -> TokenScope:
        for scope in cls:
            if scope.label == name:
                return scope
        raise ValueError(name)


class ScopedToken:
    """What core reads of an API token, the ``request.auth`` of a request made with one (apps/accounts' ApiToken):
    its scope, and the organization it is bound to (``None``: unbound)."""

    scope: int
    organization_id: int | None

    def allows(self, scope: TokenScope) -> bool:
        return self.scope >= scope

    def scope_label(self) -> str:
        return TokenScope(self.scope).label


def request_token(request: Any) -> ScopedToken | None:
    """The API token a request was made with, or None (a session, or anonymous)."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ScopedToken) else None


def bound_organization_id(request: Any) -> int | None:
    """The organization the request's token is bound to: the request acts only there (None: any)."""
    token = request_token(request)
    return token.organization_id if token is not None else None


def organization_model() -> type[models.Model]:
    """The Organization model (every owned object belongs to one)."""
    return apps.get_model(ORGANIZATION_MODEL)


def role_of(user: Any, organization: Any) -> Role | None:
    """The user's role in the organization, or None (also for a request that may not reach the organization as a
    member: one in ``user.access_excluded_organizations``, as restrict() reads it; enforced SSO sets it)."""
    if not getattr(user, "is_authenticated", False):
        return None
    if organization.pk in (getattr(user, "access_excluded_organizations", None) or ()):
        return None
    membership = apps.get_model(MEMBERSHIP_MODEL)
    role = membership.objects.filter(organization=organization, user=user).values_list("role", flat=True).first()
    return Role(role) if role is not None else None


# Actions restrict() understands. "view", "change", "delete" and "run" may also be granted per object; "share"
# (manage an object's grants) comes from the role in the owning organization only: a grant never passes on the
# right to grant.
VIEW, CHANGE, DELETE, RUN, SHARE = "view", "change", "delete", "run", "share"
GRANTABLE_ACTIONS = (VIEW, CHANGE, DELETE, RUN)

DEFAULT_ROLES = {
    VIEW: Role.VIEWER,
    CHANGE: Role.MEMBER,
    RUN: Role.MEMBER,
    DELETE: Role.ADMIN,
    SHARE: Role.ADMIN,
}

# What a grant to a whole organization gives each of its members: an action of the grant, when the member's role
# there is at least the role table's for that action (a viewer of the grantee organization views what was granted
# to run, a member runs it). DESIGN.md's role table, not the object's own policy: the grantee organization's
# roles mean what they mean everywhere.
ORGANIZATION_GRANT_ROLES = {VIEW: Role.VIEWER, RUN: Role.MEMBER, CHANGE: Role.MEMBER, DELETE: Role.ADMIN}


@dataclass(frozen=True)
class AccessPolicy:
    """How ``restrict()`` reaches an owned model's organization, visibility and grants.

    ``organization_field`` is the ORM path to the owning Organization (``None`` on Organization itself).
    ``visibility_field`` is the ORM path to a Visibility value, or ``None`` for objects that are never
    visible outside their organization. ``roles`` maps each action to the least role that allows it;
    an action missing from it is not allowed through roles at all (grants may still allow it).
    ``creator_field`` is the ORM path to the user who made the object, for models whose maker may do
    ``creator_actions`` on it whatever their role (a Job: its creator sees and cancels it); ``None`` gives the
    creator no such right. With ``creator_while_member`` that right lasts only while the creator is a member of
    the owning organization, unless the boolean field ``creator_kept_field`` of the object is true (a prediction
    stays its creator's own; an audit export of the organization does not).
    ``grants_via`` names a foreign key whose target's grants apply instead of grants of the object's own (a model
    version has no grant tables: a grant on its model reaches it).

    Grants are django-guardian's direct-FK tables ``<Model>UserObjectPermission`` and
    ``<Model>GroupObjectPermission`` (a team is an auth group), plus, where the app defines it,
    ``<Model>OrganizationObjectPermission`` (apps/organizations/models.py): a grant to every member of another
    organization, each as their role there allows (``ORGANIZATION_GRANT_ROLES``).
    """

    organization_field: str | None = "organization"
    visibility_field: str | None = None
    roles: dict[str, Role] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    grants: bool = True
    creator_field: str | None = None
    creator_actions: tuple[str, ...] = (VIEW,)
    creator_while_member: bool = False
    creator_kept_field: str | None = None
    grants_via: str | None = None

    def organization_id_path(self) -> str:
        return f"{self.organization_field}_id" if self.organization_field else "pk"

    def grants_model(self, model: type[models.Model]) -> type[models.Model]:
        """The model whose per-object grants apply: ``model`` itself, or the one its ``grants_via`` field points to."""
        return model._meta.get_field(self.grants_via).related_model if self.grants_via else model

    def role_for(self, action: str) -> Role | None:
        return self.roles.get(action)
