"""Querysets of the catalog: soft-deleted models are left out by default; versions take their model's grants."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models
from django.db.models import Exists, OuterRef, Q

from apps.core.querysets import RestrictedQuerySet, grant_codenames


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
    """Versions of models. ``restrict()`` leaves out versions of soft-deleted models, and a grant on the model
    (to a user or a team) reaches all its versions: versions have no grant tables of their own."""

    def restrict(self, user: Any, action: str = "view", *, within_organization: int | None = None):
        return (
            super()
            .restrict(user, action, within_organization=within_organization)
            .filter(model__deleted_at__isnull=True)
        )

    def _grant_condition(self, action: str, user: Any) -> Q:
        model = apps.get_model("marketplace", "Model")
        user_grants = apps.get_model("marketplace", "ModelUserObjectPermission")
        team_grants = apps.get_model("marketplace", "ModelGroupObjectPermission")
        codenames = grant_codenames(model, action)
        by_user = Exists(
            user_grants.objects.filter(
                content_object_id=OuterRef("model_id"), user_id=user.pk, permission__codename__in=codenames
            )
        )
        by_team = Exists(
            team_grants.objects.filter(
                content_object_id=OuterRef("model_id"), group__user=user.pk, permission__codename__in=codenames
            )
        )
        return Q(by_user) | Q(by_team)
