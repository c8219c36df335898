"""Who may see or change a registry beyond its organization's admins: its grants
(apps/organizations/api/grants.py)."""

from __future__ import annotations

from apps.organizations.api.grants import grant_views
from apps.organizations.api.views import ORG_SLUG
from apps.registries.api.views import SLUG
from apps.registries.models import Registry

RegistryGrantListView, RegistryGrantDetailView = grant_views(
    model=Registry,
    tag="registry access",
    noun="registry",
    parameters=[ORG_SLUG, SLUG],
    lookup=lambda org_slug, registry_slug, **rest: {"organization__slug": org_slug, "slug": registry_slug},
    detail_route="org-registry-grant-detail",
)
