"""Catalog pieces other pages show: the public models of the landing page."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists, OuterRef

from apps.marketplace.models import Model, ModelVersion, ValidationStatus, VersionStatus

register = template.Library()

FEATURED = 3
RECENT = 6


@register.inclusion_tag("marketplace/_public_models.html")
def public_models(featured: int = FEATURED, recent: int = RECENT) -> dict[str, Any]:
    """The landing page's models, those anyone may view (``restrict()`` for an anonymous visitor): *featured*, the
    public models a visitor can try from their page (a published version that passed validation), newest first;
    *recent*, the other public models, most recently updated first."""
    runnable = ModelVersion.objects.filter(
        model=OuterRef("pk"), status=VersionStatus.PUBLISHED, validation_status=ValidationStatus.PASSED
    )
    visible = (
        Model.objects.restrict(AnonymousUser(), "view")
        .select_related("organization")
        .annotate(runnable=Exists(runnable))
    )
    chosen = list(visible.filter(runnable=True).order_by("-updated_at", "name")[:featured])
    others = list(visible.exclude(pk__in=[model.pk for model in chosen]).order_by("-updated_at", "name")[:recent])
    return {"featured": chosen, "recent": others, "total": visible.count()}
