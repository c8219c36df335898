"""SCIM 2.0 per organization: /orgs/<slug>/scim/v2/... (docs/admin/scim.md)."""

from __future__ import annotations

from django.urls import path

from apps.organizations import scim_views as views

urlpatterns = [
    path("orgs/<str:org_slug>/scim/v2/Users", views.UsersView.as_view(), name="scim-users"),
    path("orgs/<str:org_slug>/scim/v2/Users/<str:scim_id>", views.UserView.as_view(), name="scim-user"),
    path("orgs/<str:org_slug>/scim/v2/Groups", views.GroupsView.as_view(), name="scim-groups"),
    path("orgs/<str:org_slug>/scim/v2/Groups/<str:scim_id>", views.GroupView.as_view(), name="scim-group"),
    path(
        "orgs/<str:org_slug>/scim/v2/ServiceProviderConfig",
        views.ServiceProviderConfigView.as_view(),
        name="scim-service-provider-config",
    ),
    path("orgs/<str:org_slug>/scim/v2/ResourceTypes", views.ResourceTypesView.as_view(), name="scim-resource-types"),
    path("orgs/<str:org_slug>/scim/v2/Schemas", views.SchemasView.as_view(), name="scim-schemas"),
]
