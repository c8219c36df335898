"""One lookup path for owned objects: restrict → 404 → 403 → lock, for the API's viewsets and the pages' mixins.

* ``find_allowed``: the object among those the caller may view (else 404), then allowed the action (else 403);
* ``lock_allowed``: inside the write's transaction, the row again through restrict() with ``select_for_update``:
  a right lost since the lookup refuses the write (403) and it rolls back (DESIGN.md: writes are re-checked);
* ``require_organization_action``: what is done *in* an organization rather than to one of its objects is a
  restrict() action on the organization itself (``Organization.access``): ``"create"`` (create objects in it:
  members), ``"audit"`` (read its audit trail: admins), ``"administer"`` (run its administrative jobs: admins).

A token bound to an organization (``within_organization``) narrows each of them to that organization and what is
public. Refusals are Django's ``Http404`` and ``PermissionDenied`` (``Refused`` carries a stable ``code``): pages
answer them as they are, the API's exception handler turns them into its JSON errors.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.shortcuts import get_object_or_404

from apps.core.access import VIEW, organization_model

# restrict() actions on an organization for what is done in it (their least role: Organization.access.roles).
CREATE_IN, AUDIT, ADMINISTER = "create", "audit", "administer"
IN_ORGANIZATION = (CREATE_IN, AUDIT, ADMINISTER)


class Refused(PermissionDenied):
    """A 403 with a stable code (``token_binding``, ``insufficient_scope``...), kept by the API's answer."""

    def __init__(self, message: str, code: str = "permission_denied") -> None:
        super().__init__(message)
        self.code = code


def find_allowed(
    queryset: QuerySet, user: Any, action: str = VIEW, *, within_organization: int | None = None, **lookup: Any
) -> Model:
    """The object ``lookup`` names: 404 unless ``user`` may view it, 403 unless they may ``action`` it."""
    obj = get_object_or_404(queryset.restrict(user, VIEW, within_organization=within_organization), **lookup)
    require_action(obj, user, action, within_organization=within_organization)
    return obj


def require_action(obj: Model, user: Any, action: str, *, within_organization: int | None = None) -> None:
    """403 unless restrict() allows ``action`` on ``obj`` (an object the caller is known to be able to view)."""
    if action == VIEW:
        return
    manager = type(obj)._default_manager
    if not manager.restrict(user, action, within_organization=within_organization).filter(pk=obj.pk).exists():
        raise PermissionDenied(f"You may view this {obj._meta.verbose_name} but not {action} it.")


def lock_allowed(
    queryset: QuerySet, obj: Model, user: Any, action: str, *, within_organization: int | None = None
) -> Model:
    """Inside a transaction: ``obj``'s row, locked, if ``user`` may still ``action`` it; else 403 (roll back)."""
    restricted = queryset.restrict(user, action, within_organization=within_organization)
    locked = restricted.select_for_update(of=("self",)).filter(pk=obj.pk).first()
    if locked is None:
        raise PermissionDenied(f"You may no longer {action} this {obj._meta.verbose_name}.")
    return locked


def refuse_outside_binding(organization: Any, within_organization: int | None, *, doing: str = "act") -> None:
    """403 ``token_binding`` for a token bound to another organization than ``organization``."""
    if within_organization is not None and within_organization != organization.pk:
        raise Refused(
            f"This token is bound to another organization; it cannot {doing} in “{organization.slug}”.",
            code="token_binding",
        )


def may_in_organization(user: Any, organization: Any, action: str, *, within_organization: int | None = None) -> bool:
    """Whether restrict() allows ``action`` on ``organization`` (``"create"``, ``"audit"``, ``"administer"``...)."""
    allowed = organization_model().objects.restrict(user, action, within_organization=within_organization)
    return allowed.filter(pk=organization.pk).exists()


def require_organization_action(
    user: Any,
    organization: Any,
    action: str,
    *,
    within_organization: int | None = None,
    doing: str = "do this",
) -> None:
    """403 unless ``user`` may ``action`` in ``organization`` (a token bound elsewhere: ``token_binding``); the
    refusal names the least role that may (read from ``Organization.access``)."""
    refuse_outside_binding(organization, within_organization)
    if not may_in_organization(user, organization, action, within_organization=within_organization):
        role = organization_model().access.role_for(action)
        who = f"an organization {role.label} or above" if role is not None else "nobody through a role"
        raise PermissionDenied(f"Only {who} may {doing} in “{organization.slug}”.")
