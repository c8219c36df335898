"""Sharing one object: grants of view, run or change to a user, a team or another whole organization.

A grant is a row of the object's django-guardian direct-FK tables (``<Model>UserObjectPermission``,
``<Model>GroupObjectPermission``: a team is an auth group) or of its ``<Model>OrganizationObjectPermission``
(apps/organizations/models.py). ``restrict()`` reads all three (apps/core/querysets.py); nothing here decides
access, these services only write and list the rows, audited in the owning organization's chain.

Who manages an object's grants: those ``restrict(user, "share")`` allows, its organization's admins and owners
(a grant never passes on the right to grant). Pages and API call these services; they re-check that right with the
object locked, inside the transaction. Errors a caller can make answer ``ValidationError`` naming the field
(``grantee_type``, ``grantee``, ``permission``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction

from apps.audit.services import record_event
from apps.core.access import CHANGE, RUN, SHARE, VIEW
from apps.core.querysets import grant_models, organization_grant_model
from apps.organizations.models import Organization, Team

USER, TEAM, ORGANIZATION = "user", "team", "organization"
GRANTEE_TYPES = (USER, TEAM, ORGANIZATION)
# What the Access panel and the API offer, weakest first; an object offers those its model has a permission for
# (a registry has no "run").
OFFERED_PERMISSIONS = (VIEW, RUN, CHANGE)
PERMISSION_HELP = {
    VIEW: "sees it",
    RUN: "sees and runs it",
    CHANGE: "sees and changes it",
}


@dataclass(frozen=True)
class Grant:
    """One permission on one object, granted to a user, a team or an organization."""

    grantee_type: str
    grantee: Any  # a User, a Team or an Organization
    permission: str

    @property
    def grantee_name(self) -> str:
        """How URLs and request bodies name the grantee: a handle, ``org/team`` or an organization's slug."""
        if self.grantee_type == USER:
            return self.grantee.handle
        if self.grantee_type == TEAM:
            return f"{self.grantee.organization.slug}/{self.grantee.slug}"
        return self.grantee.slug

    @property
    def grantee_label(self) -> str:
        """How people read the grantee."""
        if self.grantee_type == USER:
            name = getattr(self.grantee, "name", "") or ""
            return f"{name} ({self.grantee.handle})" if name else self.grantee.handle
        if self.grantee_type == TEAM:
            return f"team {self.grantee.name} ({self.grantee_name})"
        return f"organization {self.grantee.name} ({self.grantee.slug})"

    @property
    def sort_key(self) -> tuple:
        return (GRANTEE_TYPES.index(self.grantee_type), self.grantee_name, OFFERED_PERMISSIONS.index(self.permission))


def offered_permissions(model: type[models.Model]) -> tuple[str, ...]:
    """The permissions ``model`` may be granted (of view, run, change: those its model declares)."""
    names = {f"{action}_{model._meta.model_name}" for action in OFFERED_PERMISSIONS}
    existing = set(
        Permission.objects.filter(content_type__app_label=model._meta.app_label, codename__in=names).values_list(
            "codename", flat=True
        )
    )
    return tuple(action for action in OFFERED_PERMISSIONS if f"{action}_{model._meta.model_name}" in existing)


def _action_of(codename: str, model: type[models.Model]) -> str:
    return codename.removesuffix(f"_{model._meta.model_name}")


def grants_of(obj: models.Model) -> list[Grant]:
    """Every grant on ``obj`` (of the permissions offered), users, then teams, then organizations (three queries)."""
    model = type(obj)
    user_grants, team_grants = grant_models(model)
    offered = {f"{action}_{model._meta.model_name}" for action in OFFERED_PERMISSIONS}
    found: list[Grant] = []
    for row in user_grants.objects.filter(content_object=obj, permission__codename__in=offered).select_related(
        "user", "permission"
    ):
        found.append(Grant(USER, row.user, _action_of(row.permission.codename, model)))
    rows = team_grants.objects.filter(content_object=obj, permission__codename__in=offered, group__team__isnull=False)
    for row in rows.select_related("group__team__organization", "permission"):
        found.append(Grant(TEAM, row.group.team, _action_of(row.permission.codename, model)))
    organization_grants = organization_grant_model(model)
    if organization_grants is not None:
        rows = organization_grants.objects.filter(content_object=obj, permission__codename__in=offered)
        for row in rows.select_related("organization", "permission"):
            found.append(Grant(ORGANIZATION, row.organization, _action_of(row.permission.codename, model)))
    return sorted(found, key=lambda grant: grant.sort_key)


def _clean_permission(model: type[models.Model], permission: Any) -> Permission:
    offered = offered_permissions(model)
    if permission not in offered:
        raise ValidationError(
            {"permission": [f"Grant one of: {', '.join(offered)} (got “{permission}”)."]}, code="invalid_permission"
        )
    return Permission.objects.get(
        content_type__app_label=model._meta.app_label, codename=f"{permission}_{model._meta.model_name}"
    )


def find_grantee(*, obj: models.Model, actor: Any, grantee_type: Any, grantee: Any) -> Any:
    """The user, team or organization ``grantee`` names (a handle; a team's slug in the object's organization or
    ``org/team``; an organization's slug); ValidationError naming the field otherwise.

    A team the actor may not view is unknown to them: the same message as one that does not exist.
    """
    if grantee_type not in GRANTEE_TYPES:
        raise ValidationError(
            {"grantee_type": [f"One of: {', '.join(GRANTEE_TYPES)} (got “{grantee_type}”)."]}, code="invalid_choice"
        )
    name = grantee.strip() if isinstance(grantee, str) else ""
    if not name:
        raise ValidationError({"grantee": [f"Name the {grantee_type} to grant access to."]}, code="required")
    if grantee_type == USER:
        found = get_user_model().objects.filter(handle__iexact=name.lstrip("@"), is_active=True).first()
        if found is None:
            raise ValidationError({"grantee": [f"No user has the handle “{name}”."]}, code="unknown_user")
        return found
    if grantee_type == TEAM:
        org_slug, _, team_slug = name.rpartition("/")
        teams = Team.objects.restrict(actor, VIEW).select_related("organization", "group")
        if org_slug:
            found = teams.filter(organization__slug=org_slug.lower(), slug=team_slug.lower()).first()
        else:
            found = teams.filter(organization_id=obj.organization_id, slug=team_slug.lower()).first()
        if found is None:
            where = f"“{org_slug}”" if org_slug else f"“{obj.organization.slug}”"
            raise ValidationError(
                {"grantee": [f"No team “{team_slug}” in {where} that you can see (name it org/team)."]},
                code="unknown_team",
            )
        return found
    # Any organization, by its slug: slugs share one namespace with handles and are no secret (taking one says it
    # is taken); the grant shows the grantee nothing of the object's organization beyond the object.
    found = Organization.objects.filter(slug=name.lower()).first()
    if found is None:
        raise ValidationError({"grantee": [f"No organization has the slug “{name}”."]}, code="unknown_organization")
    return found


def _check_grantee(obj: models.Model, actor: Any, grantee_type: str, grantee: Any) -> None:
    if grantee_type == USER and grantee.pk == actor.pk:
        raise ValidationError(
            {"grantee": ["You cannot grant access to yourself: your role already decides what you may do."]},
            code="self_grant",
        )
    if grantee_type == ORGANIZATION and grantee.pk == obj.organization_id:
        raise ValidationError(
            {
                "grantee": [
                    f"“{grantee.slug}” owns this {obj._meta.verbose_name}: its members' roles already decide. "
                    "Grant to a team or a user of it instead."
                ]
            },
            code="own_organization",
        )


def _lock_for_sharing(obj: models.Model, actor: Any) -> models.Model:
    """Inside a transaction: ``obj`` locked, if the actor may still manage its grants (403 otherwise)."""
    manager = type(obj)._default_manager
    locked = manager.restrict(actor, SHARE).select_for_update(of=("self",)).filter(pk=obj.pk).first()
    if locked is None:
        raise PermissionDenied(
            f"Only admins and owners of “{obj.organization.slug}” manage who may use this {obj._meta.verbose_name}."
        )
    return locked


def _rows(obj: models.Model, grantee_type: str, grantee: Any, permission: Permission) -> models.QuerySet:
    model = type(obj)
    user_grants, team_grants = grant_models(model)
    if grantee_type == USER:
        return user_grants.objects.filter(content_object=obj, user=grantee, permission=permission)
    if grantee_type == TEAM:
        return team_grants.objects.filter(content_object=obj, group_id=grantee.group_id, permission=permission)
    organization_grants = organization_grant_model(model)
    if organization_grants is None:
        raise ValidationError(
            {"grantee_type": [f"A {model._meta.verbose_name} cannot be granted to a whole organization."]},
            code="invalid_choice",
        )
    return organization_grants.objects.filter(content_object=obj, organization=grantee, permission=permission)


def _audit(obj: models.Model, actor: Any, action: str, grant: Grant) -> None:
    record_event(
        action=f"{obj._meta.model_name}.{action}",
        organization=obj.organization_id,
        actor=actor,
        target=obj,
        metadata={"grantee_type": grant.grantee_type, "grantee": grant.grantee_name, "permission": grant.permission},
    )


@transaction.atomic
def grant_access(*, obj: models.Model, actor: Any, grantee_type: Any, grantee: Any, permission: Any) -> Grant:
    """Grant ``permission`` (view, run, change) on ``obj`` to a user, a team or an organization; audited as
    ``<model>.access_granted``. Granting what is already granted changes nothing and writes no event."""
    model = type(obj)
    found = find_grantee(obj=obj, actor=actor, grantee_type=grantee_type, grantee=grantee)
    granted = _clean_permission(model, permission)
    _check_grantee(obj, actor, grantee_type, found)
    obj = _lock_for_sharing(obj, actor)
    grant = Grant(grantee_type, found, permission)
    rows = _rows(obj, grantee_type, found, granted)
    if rows.exists():
        return grant
    if grantee_type == USER:
        rows.model.objects.create(content_object=obj, user=found, permission=granted)
    elif grantee_type == TEAM:
        rows.model.objects.create(content_object=obj, group_id=found.group_id, permission=granted)
    else:
        rows.model.objects.create(content_object=obj, organization=found, permission=granted)
    _audit(obj, actor, "access_granted", grant)
    return grant


@transaction.atomic
def revoke_access(*, obj: models.Model, actor: Any, grantee_type: Any, grantee: Any, permission: Any) -> Grant:
    """Take back one grant; audited as ``<model>.access_revoked``. ``LookupError`` when there is no such grant.

    Access ends at once: restrict() reads the grant tables on every call."""
    model = type(obj)
    obj = _lock_for_sharing(obj, actor)
    found = _existing_grantee(obj, grantee_type, grantee)
    if found is None or permission not in OFFERED_PERMISSIONS:
        raise LookupError("no such grant")
    granted = Permission.objects.filter(
        content_type__app_label=model._meta.app_label, codename=f"{permission}_{model._meta.model_name}"
    ).first()
    if granted is None:
        raise LookupError("no such grant")
    deleted, _ = _rows(obj, grantee_type, found, granted).delete()
    if not deleted:
        raise LookupError("no such grant")
    grant = Grant(grantee_type, found, permission)
    _audit(obj, actor, "access_revoked", grant)
    return grant


def _existing_grantee(obj: models.Model, grantee_type: Any, grantee: Any) -> Any:
    """The grantee a revocation names, found among everyone (a grant to a team the actor no longer sees can still be
    taken back), or None."""
    name = grantee.strip() if isinstance(grantee, str) else ""
    if grantee_type == USER:
        return get_user_model().objects.filter(handle__iexact=name).first()
    if grantee_type == TEAM:
        org_slug, _, team_slug = name.rpartition("/")
        org_slug = org_slug or obj.organization.slug
        return Team.objects.filter(organization__slug=org_slug.lower(), slug=team_slug.lower()).first()
    if grantee_type == ORGANIZATION:
        return Organization.objects.filter(slug=name.lower()).first()
    return None
