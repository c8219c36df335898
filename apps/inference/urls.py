"""Inference pages (see apps/inference/views.py for the table of routes)."""

from __future__ import annotations

from django.urls import path

from apps.inference import pipeline_views, views

DEPLOYMENT = "orgs/<str:org_slug>/deployments/<str:slug>"
PIPELINES = "orgs/<str:org_slug>/pipelines"

urlpatterns = [
    path("models/<str:owner>/<str:name>/versions/<str:label>/try/", views.TryItView.as_view(), name="inference-try-it"),
    path(
        "models/<str:owner>/<str:name>/versions/<str:label>/batch/",
        views.RunOnFileView.as_view(),
        name="inference-run-on-file",
    ),
    path("inference/jobs/", views.inference_jobs, name="inference-jobs"),
    path("inference/jobs/<uuid:uuid>/", views.inference_job, name="inference-job"),
    path("inference/jobs/<uuid:uuid>/answer/", views.inference_job_answer, name="inference-job-answer"),
    path(f"{PIPELINES}/", pipeline_views.PipelineListView.as_view(), name="org-pipelines"),
    path(f"{PIPELINES}/new/", pipeline_views.PipelineCreateView.as_view(), name="org-pipeline-create"),
    path(f"{PIPELINES}/new/check/", pipeline_views.PipelineCheckView.as_view(), name="org-pipeline-check"),
    path(f"{PIPELINES}/<str:slug>/", pipeline_views.PipelineDetailView.as_view(), name="org-pipeline"),
    path(f"{PIPELINES}/<str:slug>/run/", pipeline_views.PipelineRunStartView.as_view(), name="org-pipeline-run-start"),
    path(
        f"{PIPELINES}/<str:slug>/runs/<uuid:uuid>/", pipeline_views.PipelineRunView.as_view(), name="org-pipeline-run"
    ),
    path("orgs/<str:org_slug>/deployments/", views.DeploymentListView.as_view(), name="org-deployments"),
    path("orgs/<str:org_slug>/deployments/new/", views.DeploymentCreateView.as_view(), name="org-deployment-create"),
    path(f"{DEPLOYMENT}/", views.DeploymentDetailView.as_view(), name="org-deployment"),
    path(f"{DEPLOYMENT}/live/", views.DeploymentLiveFragment.as_view(), name="org-deployment-live"),
    path(f"{DEPLOYMENT}/edit/", views.DeploymentEditView.as_view(), name="org-deployment-edit"),
    path(f"{DEPLOYMENT}/rollback/", views.DeploymentRollbackView.as_view(), name="org-deployment-rollback"),
    path(f"{DEPLOYMENT}/pause/", views.DeploymentPauseView.as_view(), name="org-deployment-pause"),
    path(f"{DEPLOYMENT}/resume/", views.DeploymentResumeView.as_view(), name="org-deployment-resume"),
    path(f"{DEPLOYMENT}/access/", views.DeploymentGrantView.as_view(), name="org-deployment-access"),
    path(f"{DEPLOYMENT}/access/revoke/", views.DeploymentRevokeView.as_view(), name="org-deployment-access-revoke"),
    path(f"{DEPLOYMENT}/delete/", views.DeploymentDeleteView.as_view(), name="org-deployment-delete"),
]
