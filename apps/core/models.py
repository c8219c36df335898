"""Base classes for owned models. Mechanisms only: features live in their own apps."""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from apps.core.access import AccessPolicy
from apps.core.querysets import RestrictedQuerySet


class OwnedModel(models.Model):
    """An object that belongs to one Organization and is listed and fetched only through ``restrict()``."""

    access: ClassVar[AccessPolicy] = AccessPolicy()

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        abstract = True


# The Job table lives in its own module; importing it here registers it with the app (and its migrations).
from apps.core.jobs import Job  # noqa: E402

__all__ = ["Job", "OwnedModel"]
