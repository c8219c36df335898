"""Querysets of the catalog: soft-deleted models are left out by default; versions take their model's grants."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from apps.core.access import CHANGE, RUN, VIEW
from apps.core.querysets import RestrictedQuerySet, access_condition


class ModelQuerySet(RestrictedQuerySet):
    """Models; ``alive()`` leaves out soft-deleted ones (the default manager already does)."""

    def alive(self) -> ModelQuerySet:
        return self.filter(deleted_at__isnull=True)

    def deleted(self) -> ModelQuerySet:
        return self.filter(deleted_at__isnull=False)


class ModelManager(models.Manager.from_queryset(ModelQuerySet)):
    """The default manager of Model: soft-deleted models do not exist for pages, API and tasks."""

    def get_queryset(self) -> ModelQuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)


class VersionQuerySet(RestrictedQuerySet):
    """Versions of models. ``restrict()`` leaves out versions of soft-deleted models; a grant on the model (to a
    user, a team or an organization) reaches all its versions (``AccessPolicy(grants_via="model")``).

    A draft is work in progress: it is seen (and run) only by those who may change the model, through their role or
    a ``change`` grant (to them, a team of theirs or an organization of theirs), within a token's binding. Published
    and deprecated versions follow the model's visibility; a yanked one stays visible with its reason (the views
    decide what a yank refuses)."""

    def restrict(self, user: Any, action: str = "view", *, within_organization: int | None = None):
        restricted = (
            super()
            .restrict(user, action, within_organization=within_organization)
            .filter(model__deleted_at__isnull=True)
        )
        if action not in (VIEW, RUN):
            return restricted
        return restricted.filter(self.not_a_draft_or_changeable(user, within_organization=within_organization))

    def not_a_draft_or_changeable(self, user: Any, *, within_organization: int | None = None) -> Q:
        """True for a version that is not a draft, or that ``user`` may change (the draft rule above), as one
        condition in the same query."""
        from apps.marketplace.models import VersionStatus

        visible = ~Q(status=VersionStatus.DRAFT)
        if not (getattr(user, "is_authenticated", False) and getattr(user, "is_active", False)):
            return visible
        changeable = access_condition(self.model, CHANGE, self.db, user)
        if changeable is None:
            return visible
        may_change = Q(changeable)
        if within_organization is not None:
            may_change &= Q(model__organization_id=within_organization)
        return visible | may_change
