"""Routes of the inference API (names in the ``api`` namespace).

/models/{owner}/{name}/predict                          model-predict                POST (latest published version)
/models/{owner}/{name}/versions/{label}/predict         model-version-predict        POST
/predictions/                                           prediction-list              GET
/predictions/{uuid}/                                    prediction-detail            GET
/predictions/{uuid}/webhooks/                           prediction-webhooks          GET (delivery log)
/orgs/{org_slug}/deployments/                           deployment-list              GET, POST
/orgs/{org_slug}/deployments/{slug}/                    deployment-detail            GET, PATCH, DELETE
/orgs/{org_slug}/deployments/{slug}/rollback/           deployment-rollback          POST
/orgs/{org_slug}/deployments/{slug}/revisions/          deployment-revisions         GET (?at=, ?job=)
/orgs/{org_slug}/deployments/{slug}/predict             deployment-predict           POST
/orgs/{org_slug}/deployments/{slug}/grants/             deployment-grant-list        GET, POST (grant access)
/orgs/{org_slug}/deployments/{slug}/grants/{type}/{grantee}/{permission}/  deployment-grant-detail  DELETE (revoke)
/orgs/{org_slug}/webhook-secret                         org-webhook-secret           GET, POST (rotate)
/orgs/{org_slug}/pipelines/                             pipeline-list                GET, POST
/orgs/{org_slug}/pipelines/{slug}/                      pipeline-detail              GET, PATCH, DELETE
/orgs/{org_slug}/pipelines/{slug}/run                   pipeline-run                 POST
/pipeline-runs/{uuid}/                                  pipeline-run-detail          GET
/models/{owner}/{name}/versions/{label}/performance     model-version-performance    GET, POST (measure again)
/models/{owner}/{name}/versions/{label}/batch           model-version-batch          POST (multipart: a file of rows)
/batch-jobs/                                            batch-job-list               GET
/batch-jobs/{uuid}/                                     batch-job-detail             GET
/batch-jobs/{uuid}/results                              batch-job-results            GET (the results file, partial too)
"""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.inference.api import batch as batch_api
from apps.inference.api import performance, pipelines, views
from apps.inference.api.grants import DeploymentGrantDetailView, DeploymentGrantListView

router = SimpleRouter()
router.register("predictions", views.PredictionViewSet, basename="prediction")
router.register("batch-jobs", batch_api.BatchJobViewSet, basename="batch-job")
router.register(r"orgs/(?P<org_slug>[^/.]+)/deployments", views.DeploymentViewSet, basename="deployment")
router.register(r"orgs/(?P<org_slug>[^/.]+)/pipelines", pipelines.PipelineViewSet, basename="pipeline")

# The predict routes, which gpux_portal/urls.py puts first in the API: the busiest routes, resolved without trying
# every other API pattern before them (a tenth of an online prediction's web CPU went to resolving its URL). No
# other API pattern matches their paths, so where they stand changes nothing else (tests/test_urls_order.py).
predict_urlpatterns = [
    path("models/<str:owner>/<str:name>/predict", views.VersionPredictView.as_view(), name="model-predict"),
    path(
        "models/<str:owner>/<str:name>/versions/<str:label>/predict",
        views.VersionPredictView.as_view(),
        name="model-version-predict",
    ),
    path(
        "orgs/<str:org_slug>/deployments/<str:slug>/predict",
        views.DeploymentPredictView.as_view(),
        name="deployment-predict",
    ),
]

urlpatterns = [
    path(
        "models/<str:owner>/<str:name>/versions/<str:label>/batch",
        batch_api.VersionBatchView.as_view(),
        name="model-version-batch",
    ),
    path(
        "batch-jobs/<uuid:uuid>/results",
        batch_api.BatchJobViewSet.as_view({"get": "results"}),
        name="batch-job-results",
    ),
    path(
        "orgs/<str:org_slug>/deployments/<str:slug>/grants/",
        DeploymentGrantListView.as_view(),
        name="deployment-grant-list",
    ),
    path(
        "orgs/<str:org_slug>/deployments/<str:slug>/grants/<str:grantee_type>/<path:grantee>/<str:permission>/",
        DeploymentGrantDetailView.as_view(),
        name="deployment-grant-detail",
    ),
    path("orgs/<str:org_slug>/webhook-secret", views.WebhookSecretView.as_view(), name="org-webhook-secret"),
    path("orgs/<str:org_slug>/pipelines/<str:slug>/run", pipelines.PipelineRunView.as_view(), name="pipeline-run"),
    path("pipeline-runs/<uuid:uuid>/", pipelines.PipelineRunDetailView.as_view(), name="pipeline-run-detail"),
    path(
        "models/<str:owner>/<str:name>/versions/<str:label>/performance",
        performance.VersionPerformanceView.as_view(),
        name="model-version-performance",
    ),
    *router.urls,
]
