from __future__ import annotations

from django.urls import path

from apps.analytics import views

urlpatterns = [
    path("operations/", views.operations, name="operations"),
    path("operations/live/", views.operations_live, name="operations-live"),
    path("orgs/<str:org_slug>/monitoring/", views.OrganizationMonitoringView.as_view(), name="org-monitoring"),
    path(
        "orgs/<str:org_slug>/monitoring/live/",
        views.OrganizationMonitoringLiveView.as_view(),
        name="org-monitoring-live",
    ),
]
