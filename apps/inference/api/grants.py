"""Who may use a deployment beyond its organization's roles: its grants (apps/organizations/api/grants.py)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter

from apps.inference.models import Deployment
from apps.organizations.api.grants import grant_views
from apps.organizations.api.views import ORG_SLUG

SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The deployment's slug.")

DeploymentGrantListView, DeploymentGrantDetailView = grant_views(
    model=Deployment,
    tag="deployment access",
    noun="deployment",
    parameters=[ORG_SLUG, SLUG],
    lookup=lambda org_slug, slug, **rest: {"organization__slug": org_slug, "slug": slug},
    detail_route="deployment-grant-detail",
)
