from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.accounts.views import SignupView
from apps.core.views import healthz
from apps.inference.api.urls import predict_urlpatterns

api_v1 = [
    # First: predictions are the busiest routes (apps/inference/api/urls.py, predict_urlpatterns).
    *predict_urlpatterns,
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.organizations.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("", include("apps.core.api.urls")),
    path("", include("apps.marketplace.api.urls")),
    path("", include("apps.registries.api.urls")),
    path("", include("apps.inference.api.urls")),
    path("", include("apps.analytics.api.urls")),
]

urlpatterns = [
    # First: load balancers call it several times a second, and every pattern before it is tried in turn.
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # allauth's sign-up, answering the form error when a concurrent request takes the handle first
    path("accounts/signup/", SignupView.as_view(), name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include("apps.inference.api.kserve_urls")),  # KServe v2 / Open Inference Protocol: /v2/...
    path("", include("apps.accounts.urls")),
    *([path("", include("apps.accounts.saml_urls"))] if settings.SAML_ENABLED else []),
    path("", include("apps.organizations.scim_urls")),
    path("", include("apps.organizations.sso_urls")),
    path("", include("apps.organizations.urls")),
    path("", include("apps.marketplace.urls")),
    path("", include("apps.registries.urls")),
    path("", include("apps.inference.urls")),
    path("", include("apps.analytics.urls")),
    path("", include("apps.core.urls")),
]

# Under /api/ Django's own errors (no such URL, bad Host, an unexpected exception) answer the API's JSON error shape.
handler400 = "apps.core.api.errors.handler400"
handler403 = "apps.core.api.errors.handler403"
handler404 = "apps.core.api.errors.handler404"
handler500 = "apps.core.api.errors.handler500"
