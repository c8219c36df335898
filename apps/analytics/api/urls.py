from __future__ import annotations

from django.urls import path

from apps.analytics.api import views

urlpatterns = [
    path("orgs/<str:org_slug>/usage/", views.UsageReportView.as_view(), name="org-usage"),
    path("orgs/<str:org_slug>/usage/models/<str:name>/", views.ModelUsageReportView.as_view(), name="org-usage-model"),
    path("orgs/<str:org_slug>/usage/tokens/<uuid:uuid>/", views.TokenUsageReportView.as_view(), name="org-usage-token"),
    path("orgs/<str:org_slug>/quotas/", views.QuotaView.as_view(), name="org-quotas"),
]
