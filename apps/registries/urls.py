"""Registry pages (see apps/registries/views.py for the table of routes)."""

from __future__ import annotations

from django.urls import path

from apps.registries import views

REGISTRY = "orgs/<str:org_slug>/registries/<str:registry_slug>"

urlpatterns = [
    path("orgs/<str:org_slug>/registries/", views.RegistryListView.as_view(), name="org-registries"),
    path("orgs/<str:org_slug>/registries/new/", views.RegistryCreateView.as_view(), name="org-registry-create"),
    path(f"{REGISTRY}/", views.RegistryDetailView.as_view(), name="org-registry"),
    path(f"{REGISTRY}/edit/", views.RegistryEditView.as_view(), name="org-registry-edit"),
    path(f"{REGISTRY}/sync/", views.RegistrySyncStartView.as_view(), name="org-registry-sync"),
    path(f"{REGISTRY}/check/", views.RegistryCheckView.as_view(), name="org-registry-check"),
    path(f"{REGISTRY}/access/", views.RegistryGrantView.as_view(), name="org-registry-access"),
    path(f"{REGISTRY}/access/revoke/", views.RegistryRevokeView.as_view(), name="org-registry-access-revoke"),
    path(f"{REGISTRY}/delete/", views.RegistryDeleteView.as_view(), name="org-registry-delete"),
    path(f"{REGISTRY}/syncs/<int:sync_id>/", views.RegistrySyncDetailView.as_view(), name="org-registry-sync-detail"),
    path(
        f"{REGISTRY}/syncs/<int:sync_id>/live/", views.RegistrySyncLiveFragment.as_view(), name="org-registry-sync-live"
    ),
]
