"""``RestrictedQuerySet.restrict(user, action)``: the only way pages, API and tasks list or fetch owned objects.

restrict(user, action) =
    (action is view and the visibility allows it)
 OR (action is run, the user is signed in and the visibility allows viewing)
 OR the user's role in the owner organization allows the action
 OR a user or team grant (django-guardian, direct-FK tables) of that permission
 OR a grant of that permission to an organization in which the user's role allows the action (the role table's
    role for it: a viewer there views, a member runs and changes; ``ORGANIZATION_GRANT_ROLES``)
 OR (the user is the object's creator and the policy gives creators the action: a Job's creator views and
     cancels it while a member of its organization, or for good when the job is theirs alone, a prediction).

Organizations named in ``user.access_excluded_organizations`` (set per request, e.g. by enforced SSO) give the user
no role or grant for that request: only what their visibility shows to anyone stays; a grant to such an
organization reaches none of its members for that request.

It compiles to one SQL query with EXISTS subqueries. A grant of change, delete or run implies view.
An API token bound to an organization narrows it further: that organization's objects, plus public ones for
view and run (never for change or delete).

The condition is the same SQL for every user: it is written once per model, action and database
(``access_sql``) from the models' own tables and columns, and each call binds the user's values as parameters.
Building it from ORM subqueries cost 3.5–4 ms of Python per call on the 2-core reference machine, on every page and
API request (benchmarks/RESULTS.md); binding costs a few microseconds. The outer row's columns stay ORM
expressions (``AccessCondition``), so they follow the queryset's joins and aliases, also when it becomes a
subquery of another query.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connections, models
from django.db.models import Expression, F, Q

from apps.core.access import GRANTABLE_ACTIONS, ORGANIZATION_GRANT_ROLES, RUN, VIEW, AccessPolicy, Visibility

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def _is_signed_in(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def grant_codenames(model: type[models.Model], action: str) -> list[str]:
    """Permission codenames whose grant allows ``action`` on ``model``: any grant implies view."""
    name = model._meta.model_name
    if action == VIEW:
        return [f"{granted}_{name}" for granted in GRANTABLE_ACTIONS]
    return [f"{action}_{name}"]


def grant_models(model: type[models.Model]) -> tuple[type[models.Model], type[models.Model]]:
    """The direct-FK guardian tables of ``model``: ``<Model>UserObjectPermission`` and ``...GroupObjectPermission``."""
    label = model._meta.app_label
    return (
        apps.get_model(label, f"{model.__name__}UserObjectPermission"),
        apps.get_model(label, f"{model.__name__}GroupObjectPermission"),
    )


def organization_grant_model(model: type[models.Model]) -> type[models.Model] | None:
    """``<Model>OrganizationObjectPermission``, the grants of ``model`` to whole organizations, where it has one."""
    try:
        return apps.get_model(model._meta.app_label, f"{model.__name__}OrganizationObjectPermission")
    except LookupError:
        return None


# The user's own values in ``AccessSQL.params``: replaced by the user's id at each call.
USER = object()


@dataclass(frozen=True)
class Excluded:
    """The ``index``-th organization of ``user.access_excluded_organizations`` in ``AccessSQL.params``."""

    index: int


@dataclass(frozen=True)
class AccessSQL:
    """restrict()'s condition for one model and action: SQL with ``{0}``, ``{1}``... where the outer row's
    columns go (``columns``: ORM paths from the model) and ``%s`` where ``params`` go (``USER``: the user's id)."""

    template: str
    columns: tuple[str, ...]
    params: tuple[Any, ...]

    def bind(self, user_id: Any, excluded: Sequence[Any] = ()) -> AccessCondition:
        """The condition for the user ``user_id``; ``excluded``: the organizations it was written for (as many as
        ``access_sql``'s ``excluded`` said), in whose name no grant reaches the user."""

        def value(param: Any) -> Any:
            if param is USER:
                return user_id
            if isinstance(param, Excluded):
                return excluded[param.index]
            return param

        return AccessCondition(
            self.template, [value(param) for param in self.params], [F(path) for path in self.columns]
        )


def access_condition(model: type[models.Model], action: str, using: str, user: Any) -> AccessCondition | None:
    """restrict()'s condition on ``model`` for ``action`` bound to a signed-in ``user`` (None: nothing allows it),
    with the organizations this request excludes (``user.access_excluded_organizations``) left out of grants."""
    excluded = sorted(getattr(user, "access_excluded_organizations", None) or ())
    condition = access_sql(model, action, using, len(excluded))
    return condition.bind(user.pk, excluded) if condition is not None else None


class AccessCondition(Expression):
    """A boolean SQL condition whose outer-row columns are expressions (``columns``, compiled into the template's
    ``{n}`` places with the query's own aliases) and whose values are bound parameters."""

    conditional = True

    def __init__(self, template: str, params: Sequence[Any], columns: Sequence[Any]) -> None:
        super().__init__(output_field=models.BooleanField())
        self.template = template
        self.params = tuple(params)
        self.columns = list(columns)

    def get_source_expressions(self) -> list[Any]:
        return self.columns

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.columns = list(exprs)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        compiled = []
        for column in self.columns:
            sql, params = compiler.compile(column)
            if params:  # a plain column never has any; a template cannot place them
                raise ValueError(f"restrict() column {column!r} compiled with parameters")
            compiled.append(sql)
        return self.template.format(*compiled), list(self.params)


def _q(connection: Any, name: str) -> str:
    return connection.ops.quote_name(name)


def _column(model: type[models.Model], field_name: str) -> str:
    return model._meta.get_field(field_name).column


@functools.cache
def access_sql(model: type[models.Model], action: str, using: str, excluded: int = 0) -> AccessSQL | None:
    """The condition of ``restrict()`` on ``model`` for ``action`` (None: nothing can allow it), for the database
    ``using``. Its parts, OR-ed, are DESIGN.md's definition (module docstring); aliases in its subqueries are
    ``gpux_access_*`` so that they never hide an alias of the query around them. ``excluded``: how many
    organizations the request excludes (their ids are bound with the user's), whose grants then reach no one."""
    connection = connections[using]
    policy: AccessPolicy = model.access
    parts: list[str] = []
    columns: list[str] = []
    params: list[Any] = []

    def column(path: str) -> str:
        if path not in columns:
            columns.append(path)
        return f"{{{columns.index(path)}}}"

    if policy.visibility_field and action in (VIEW, RUN):
        email = apps.get_model("account", "EmailAddress")
        visibility = column(policy.visibility_field)
        parts.append(
            f"({visibility} = %s OR ({visibility} = %s AND EXISTS (SELECT 1 FROM {_q(connection, email._meta.db_table)}"  # noqa: S608 - quoted names from the models, values bound
            f" gpux_access_e WHERE gpux_access_e.{_q(connection, _column(email, 'user'))} = %s"
            f" AND gpux_access_e.{_q(connection, _column(email, 'verified'))} = %s)))"
        )
        params += [Visibility.PUBLIC.value, Visibility.INTERNAL.value, USER, True]
    role = policy.role_for(action)
    if role is not None:
        membership = apps.get_model("organizations", "Membership")
        parts.append(
            f"EXISTS (SELECT 1 FROM {_q(connection, membership._meta.db_table)} gpux_access_m"  # noqa: S608 - quoted names from the models, values bound
            f" WHERE gpux_access_m.{_q(connection, _column(membership, 'organization'))}"
            f" = {column(policy.organization_id_path())}"
            f" AND gpux_access_m.{_q(connection, _column(membership, 'user'))} = %s"
            f" AND gpux_access_m.{_q(connection, _column(membership, 'role'))} >= %s)"
        )
        params += [USER, int(role)]
    if policy.grants and action in GRANTABLE_ACTIONS:
        granted = policy.grants_model(model)
        target = column(f"{policy.grants_via}_id" if policy.grants_via else "pk")
        codenames = grant_codenames(granted, action)
        placeholders = ", ".join(["%s"] * len(codenames))
        user_grants, team_grants = grant_models(granted)
        permission = apps.get_model("auth", "Permission")
        user_groups = get_user_model().groups.through
        permission_table = _q(connection, permission._meta.db_table)
        codename = _q(connection, _column(permission, "codename"))
        parts.append(
            f"EXISTS (SELECT 1 FROM {_q(connection, user_grants._meta.db_table)} gpux_access_ug"  # noqa: S608 - quoted names from the models, values bound
            f" INNER JOIN {permission_table} gpux_access_up"
            f" ON gpux_access_up.{_q(connection, permission._meta.pk.column)}"
            f" = gpux_access_ug.{_q(connection, _column(user_grants, 'permission'))}"
            f" WHERE gpux_access_ug.{_q(connection, _column(user_grants, 'content_object'))} = {target}"
            f" AND gpux_access_ug.{_q(connection, _column(user_grants, 'user'))} = %s"
            f" AND gpux_access_up.{codename} IN ({placeholders}))"
        )
        params += [USER, *codenames]
        parts.append(
            f"EXISTS (SELECT 1 FROM {_q(connection, team_grants._meta.db_table)} gpux_access_tg"  # noqa: S608 - quoted names from the models, values bound
            f" INNER JOIN {permission_table} gpux_access_tp"
            f" ON gpux_access_tp.{_q(connection, permission._meta.pk.column)}"
            f" = gpux_access_tg.{_q(connection, _column(team_grants, 'permission'))}"
            f" INNER JOIN {_q(connection, user_groups._meta.db_table)} gpux_access_tm"
            f" ON gpux_access_tm.{_q(connection, _column(user_groups, 'group'))}"
            f" = gpux_access_tg.{_q(connection, _column(team_grants, 'group'))}"
            f" WHERE gpux_access_tg.{_q(connection, _column(team_grants, 'content_object'))} = {target}"
            f" AND gpux_access_tm.{_q(connection, _column(user_groups, get_user_model()._meta.model_name))} = %s"
            f" AND gpux_access_tp.{codename} IN ({placeholders}))"
        )
        params += [USER, *codenames]
        organization_grants = organization_grant_model(granted)
        if organization_grants is not None:
            membership = apps.get_model("organizations", "Membership")
            not_excluded = ""
            if excluded:
                not_excluded = (
                    f" AND gpux_access_om.{_q(connection, _column(membership, 'organization'))}"
                    f" NOT IN ({', '.join(['%s'] * excluded)})"
                )
            parts.append(
                f"EXISTS (SELECT 1 FROM {_q(connection, organization_grants._meta.db_table)} gpux_access_og"  # noqa: S608 - quoted names from the models, values bound
                f" INNER JOIN {permission_table} gpux_access_op"
                f" ON gpux_access_op.{_q(connection, permission._meta.pk.column)}"
                f" = gpux_access_og.{_q(connection, _column(organization_grants, 'permission'))}"
                f" INNER JOIN {_q(connection, membership._meta.db_table)} gpux_access_om"
                f" ON gpux_access_om.{_q(connection, _column(membership, 'organization'))}"
                f" = gpux_access_og.{_q(connection, _column(organization_grants, 'organization'))}"
                f" WHERE gpux_access_og.{_q(connection, _column(organization_grants, 'content_object'))} = {target}"
                f" AND gpux_access_om.{_q(connection, _column(membership, 'user'))} = %s"
                f" AND gpux_access_om.{_q(connection, _column(membership, 'role'))} >= %s"
                f" AND gpux_access_op.{codename} IN ({placeholders}){not_excluded})"
            )
            params += [USER, int(ORGANIZATION_GRANT_ROLES[action]), *codenames]
            params += [Excluded(index) for index in range(excluded)]
    if policy.creator_field and action in policy.creator_actions:
        # Only these actions: what the creator may do beyond them still comes from their role or grants.
        creator = f"{column(policy.creator_field + '_id')} = %s"
        params.append(USER)
        if policy.creator_while_member:
            membership = apps.get_model("organizations", "Membership")
            kept = ""
            if policy.creator_kept_field:
                kept = f"{column(policy.creator_kept_field)} = %s OR "
                params.append(True)
            table = _q(connection, membership._meta.db_table)
            creator = (
                f"({creator} AND ({kept}EXISTS (SELECT 1 FROM {table} gpux_access_cm"  # noqa: S608 - quoted names, values bound
                f" WHERE gpux_access_cm.{_q(connection, _column(membership, 'organization'))}"
                f" = {column(policy.organization_id_path())}"
                f" AND gpux_access_cm.{_q(connection, _column(membership, 'user'))} = %s)))"
            )
            params.append(USER)
        parts.append(creator)
    if not parts:
        return None
    return AccessSQL("(" + " OR ".join(parts) + ")", tuple(columns), tuple(params))


class RestrictedQuerySet(models.QuerySet):
    """A queryset of an owned model (one that declares ``access = AccessPolicy(...)``)."""

    def restrict(
        self,
        user: AnonymousUser | Any,
        action: str = VIEW,
        *,
        within_organization: int | None = None,
    ) -> RestrictedQuerySet:
        policy: AccessPolicy = self.model.access
        if not _is_signed_in(user):
            if action == VIEW and policy.visibility_field:
                return self.filter(**{policy.visibility_field: Visibility.PUBLIC})
            return self.none()
        condition = access_condition(self.model, action, self.db, user)
        if condition is None:
            return self.none()
        restricted = self.filter(condition)
        if within_organization is not None:
            # A bound token acts only inside its organization; elsewhere it may at most view or run what is public.
            scope = Q(**{policy.organization_id_path(): within_organization})
            if policy.visibility_field and action in (VIEW, RUN):
                scope |= Q(**{policy.visibility_field: Visibility.PUBLIC})
            restricted = restricted.filter(scope)
        excluded = getattr(user, "access_excluded_organizations", None)
        if excluded:
            # Organizations this request may not reach as a member (one that requires SSO, for a session that did not
            # sign in through its IdP): roles and grants there count for nothing; what anyone may see stays visible.
            scope = ~Q(**{f"{policy.organization_id_path()}__in": list(excluded)})
            if policy.visibility_field and action in (VIEW, RUN):
                scope |= Q(**{f"{policy.visibility_field}__in": [Visibility.PUBLIC, Visibility.INTERNAL]})
            restricted = restricted.filter(scope)
        return restricted
