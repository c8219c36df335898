"""Routes of the registries API (names in the ``api`` namespace).

/registry-backends/                                   registry-backend-list   GET
/orgs/{org_slug}/registries/                          org-registry-list       GET, POST
/orgs/{org_slug}/registries/{registry_slug}/          org-registry-detail     GET, PATCH, DELETE
/orgs/{org_slug}/registries/{registry_slug}/check/    org-registry-check      POST
/orgs/{org_slug}/registries/{registry_slug}/syncs/    org-registry-sync-list  GET, POST (start a sync)
/orgs/{org_slug}/registries/{registry_slug}/syncs/{sync_id}/  org-registry-sync-detail  GET
/orgs/{org_slug}/registries/{registry_slug}/grants/   org-registry-grant-list GET, POST (grant access)
/orgs/{org_slug}/registries/{registry_slug}/grants/{type}/{grantee}/{permission}/  org-registry-grant-detail  DELETE
/orgs/{org_slug}/registry-index.jsonl                 org-registry-index      GET (the catalog in the HTTP-index format)
"""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.registries.api import export, views
from apps.registries.api.grants import RegistryGrantDetailView, RegistryGrantListView

ORG = r"orgs/(?P<org_slug>[^/.]+)"

router = SimpleRouter()
router.register(rf"{ORG}/registries", views.RegistryViewSet, basename="org-registry")
router.register(
    rf"{ORG}/registries/(?P<registry_slug>[^/.]+)/syncs", views.RegistrySyncViewSet, basename="org-registry-sync"
)

urlpatterns = [
    path("registry-backends/", views.BackendListView.as_view(), name="registry-backend-list"),
    path(
        "orgs/<str:org_slug>/registries/<str:registry_slug>/check/",
        views.RegistryCheckView.as_view(),
        name="org-registry-check",
    ),
    path(
        "orgs/<str:org_slug>/registries/<str:registry_slug>/grants/",
        RegistryGrantListView.as_view(),
        name="org-registry-grant-list",
    ),
    path(
        "orgs/<str:org_slug>/registries/<str:registry_slug>/grants/<str:grantee_type>/<path:grantee>/<str:permission>/",
        RegistryGrantDetailView.as_view(),
        name="org-registry-grant-detail",
    ),
    path("orgs/<str:org_slug>/registry-index.jsonl", export.CatalogIndexView.as_view(), name="org-registry-index"),
    *router.urls,
]
