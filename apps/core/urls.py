from __future__ import annotations

from django.urls import path

from apps.core import views

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    # Browsers and tools that ask for /favicon.ico get the portal's icon (pages name it in their <head>).
    path("favicon.ico", views.favicon, name="favicon"),
    path("", views.home, name="home"),
    path("orgs/<str:org_slug>/jobs/", views.JobsView.as_view(), name="org-jobs"),
    path("jobs/<uuid:uuid>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:uuid>/progress/", views.job_progress, name="job-progress"),
    path("jobs/<uuid:uuid>/cancel/", views.job_cancel, name="job-cancel"),
]
