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
    path("orgs/<str:org_slug>/analytics/", views.OrganizationUsageView.as_view(), name="org-analytics"),
    path(
        "orgs/<str:org_slug>/analytics/export/",
        views.OrganizationUsageExportView.as_view(),
        name="org-analytics-export",
    ),
    path(
        "orgs/<str:org_slug>/analytics/models/<str:name>/", views.ModelUsageView.as_view(), name="org-analytics-model"
    ),
    path(
        "orgs/<str:org_slug>/analytics/models/<str:name>/export/",
        views.ModelUsageExportView.as_view(),
        name="org-analytics-model-export",
    ),
    path(
        "orgs/<str:org_slug>/analytics/tokens/<uuid:uuid>/", views.TokenUsageView.as_view(), name="org-analytics-token"
    ),
    path(
        "orgs/<str:org_slug>/analytics/tokens/<uuid:uuid>/export/",
        views.TokenUsageExportView.as_view(),
        name="org-analytics-token-export",
    ),
    path("orgs/<str:org_slug>/quotas/", views.QuotasView.as_view(), name="org-quotas-page"),
]
