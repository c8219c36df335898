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
/orgs/{org_slug}/webhook-secret                         org-webhook-secret           GET, POST (rotate)
"""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.inference.api import views

router = SimpleRouter()
router.register("predictions", views.PredictionViewSet, basename="prediction")
router.register(r"orgs/(?P<org_slug>[^/.]+)/deployments", views.DeploymentViewSet, basename="deployment")

urlpatterns = [
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
    path("orgs/<str:org_slug>/webhook-secret", views.WebhookSecretView.as_view(), name="org-webhook-secret"),
    *router.urls,
]
