"""``RestrictedQuerySet.restrict(user, action)``: the only way pages, API and tasks list or fetch owned objects.

restrict(user, action) =
    (action is view and the visibility allows it)
 OR (action is run, the user is signed in and the visibility allows viewing)
 OR the user's role in the owner organization allows the action
 OR a user or team grant (django-guardian, direct-FK tables) of that permission
 OR (action is view and the user is the object's creator, for models whose policy names a ``creator_field``).

It compiles to one SQL query with EXISTS subqueries. A grant of change, delete or run implies view.
An API token bound to an organization narrows it further: that organization's objects, plus public ones for
view and run (never for change or delete).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import models
from django.db.models import Exists, OuterRef, Q

from apps.core.access import GRANTABLE_ACTIONS, RUN, VIEW, AccessPolicy, Visibility

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

        allowed = self._visibility_condition(policy, action, user)
        allowed = _or(allowed, self._role_condition(policy, action, user))
        if policy.grants:
            allowed = _or(allowed, self._grant_condition(action, user))
        allowed = _or(allowed, self._creator_condition(policy, action, user))
        if allowed is None:
            return self.none()
        restricted = self.filter(allowed)
        if within_organization is not None:
            # A bound token acts only inside its organization; elsewhere it may at most view or run what is public.
            scope = Q(**{policy.organization_id_path(): within_organization})
            if policy.visibility_field and action in (VIEW, RUN):
                scope |= Q(**{policy.visibility_field: Visibility.PUBLIC})
            restricted = restricted.filter(scope)
        return restricted

    # -- the parts of the definition ----------------------------------------------------------------------
    @staticmethod
    def _visibility_condition(policy: AccessPolicy, action: str, user: Any) -> Q | None:
        if not policy.visibility_field or action not in (VIEW, RUN):
            return None
        email_address = apps.get_model("account", "EmailAddress")
        verified = Exists(email_address.objects.filter(user_id=user.pk, verified=True))
        field = policy.visibility_field
        return Q(**{field: Visibility.PUBLIC}) | (Q(**{field: Visibility.INTERNAL}) & verified)

    @staticmethod
    def _role_condition(policy: AccessPolicy, action: str, user: Any) -> Exists | None:
        role = policy.role_for(action)
        if role is None:
            return None
        membership = apps.get_model("organizations", "Membership")
        return Exists(
            membership.objects.filter(
                organization_id=OuterRef(policy.organization_id_path()), user_id=user.pk, role__gte=role
            )
        )

    def _grant_condition(self, action: str, user: Any) -> Q:
        user_grants, team_grants = grant_models(self.model)
        codenames = grant_codenames(self.model, action)
        by_user = Exists(
            user_grants.objects.filter(
                content_object_id=OuterRef("pk"), user_id=user.pk, permission__codename__in=codenames
            )
        )
        by_team = Exists(
            team_grants.objects.filter(
                content_object_id=OuterRef("pk"), group__user=user.pk, permission__codename__in=codenames
            )
        )
        return Q(by_user) | Q(by_team)

    @staticmethod
    def _creator_condition(policy: AccessPolicy, action: str, user: Any) -> Q | None:
        # Only viewing: what the creator may do beyond that still comes from their role or grants.
        if action != VIEW or not policy.creator_field:
            return None
        return Q(**{policy.creator_field: user.pk})


def _or(left: Any, right: Any) -> Any:
    if left is None:
        return right
    if right is None:
        return left
    return Q(left) | Q(right)
