"""One lookup path for owned objects: restrict → 404 → 403 → lock, for the API's viewsets and the pages' mixins.

* ``find_allowed``: the object among those the caller may view (else 404), then allowed the action (else 403);
  ``find_allowed_at_once`` the same in one query when allowed (hot paths: a prediction); ``find_among`` for a
  queryset already narrowed by restrict(); ``allows`` / ``require_action`` for an object already found;
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

from typing import Any, NoReturn

from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404
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
    queryset: QuerySet,
    user: Any,
    action: str = VIEW,
    *,
    within_organization: int | None = None,
    message: str | None = None,
    **lookup: Any,
) -> Model:
    """The object ``lookup`` names: 404 unless ``user`` may view it, 403 unless they may ``action`` it (``message``:
    the refusal's wording, ``{obj}`` and ``{action}`` filled in)."""
    obj = get_object_or_404(queryset.restrict(user, VIEW, within_organization=within_organization), **lookup)
    require_action(obj, user, action, within_organization=within_organization, message=message)
    return obj


def find_allowed_at_once(
    queryset: QuerySet,
    user: Any,
    action: str,
    *,
    within_organization: int | None = None,
    message: str | None = None,
    **lookup: Any,
) -> Model:
    """``find_allowed`` in one query when the caller may ``action`` the object (the hot path: a prediction);
    only a refusal costs a second query, which tells 404 (not viewable) from 403 (viewable, not allowed)."""
    allowed = queryset.restrict(user, action, within_organization=within_organization).filter(**lookup).first()
    if allowed is not None:
        return allowed
    obj = get_object_or_404(queryset.restrict(user, VIEW, within_organization=within_organization), **lookup)
    refuse(obj, action, message=message)


def find_among(allowed: QuerySet, **lookup: Any) -> Model:
    """The object ``lookup`` names in ``allowed``, a queryset already narrowed through restrict(); else 404."""
    return get_object_or_404(allowed, **lookup)


def allows(obj: Model, user: Any, action: str, *, within_organization: int | None = None) -> bool:
    """Whether restrict() allows ``action`` on ``obj`` (``view`` on an object already found viewable: True)."""
    if action == VIEW:
        return True
    manager = type(obj)._default_manager
    return manager.restrict(user, action, within_organization=within_organization).filter(pk=obj.pk).exists()


def require_action(
    obj: Model,
    user: Any,
    action: str,
    *,
    within_organization: int | None = None,
    message: str | None = None,
    hidden: bool = False,
) -> None:
    """403 unless restrict() allows ``action`` on ``obj`` (an object the caller is known to be able to view);
    ``hidden``: 404 instead, for what must not be seen without that right (a draft version)."""
    if not allows(obj, user, action, within_organization=within_organization):
        if hidden:
            raise Http404
        raise PermissionDenied(_refusal(message, obj, action))


def lock_allowed(
    queryset: QuerySet,
    obj: Model,
    user: Any,
    action: str,
    *,
    within_organization: int | None = None,
    message: str | None = None,
) -> Model:
    """Inside a transaction: ``obj``'s row, locked, if ``user`` may still ``action`` it; else 403 (roll back)."""
    restricted = queryset.restrict(user, action, within_organization=within_organization)
    locked = restricted.select_for_update(of=("self",)).filter(pk=obj.pk).first()
    if locked is None:
        raise PermissionDenied(_refusal(message or "You may no longer {action} this {verbose_name}.", obj, action))
    return locked


def refuse(obj: Model, action: str, *, message: str | None = None) -> NoReturn:
    """The 403 for an object the caller may view but not ``action`` (when ``allows`` was already asked)."""
    raise PermissionDenied(_refusal(message, obj, action))


def _refusal(message: str | None, obj: Model, action: str) -> str:
    template = message or "You may view this {verbose_name} but not {action} it."
    return template.format(obj=obj, action=action, verbose_name=obj._meta.verbose_name)


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
