"""Querysets of the catalog: soft-deleted models are left out by default; versions take their model's grants."""

from __future__ import annotations

from typing import Any

from django.db import models

from apps.core.querysets import RestrictedQuerySet


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
    user or a team) reaches all its versions (``AccessPolicy(grants_via="model")``)."""

    def restrict(self, user: Any, action: str = "view", *, within_organization: int | None = None):
        return (
            super()
            .restrict(user, action, within_organization=within_organization)
            .filter(model__deleted_at__isnull=True)
        )
