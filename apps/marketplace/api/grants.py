"""Who may use a model beyond its organization's roles: its grants (apps/organizations/api/grants.py)."""

from __future__ import annotations

from apps.marketplace.api.schema import NAME, OWNER
from apps.marketplace.models import Model
from apps.organizations.api.grants import grant_views

ModelGrantListView, ModelGrantDetailView = grant_views(
    model=Model,
    tag="model access",
    noun="model",
    parameters=[OWNER, NAME],
    lookup=lambda owner, name, **rest: {"organization__slug": owner, "name": name},
    detail_route="model-grant-detail",
)
