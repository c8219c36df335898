from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.accounts.api import views

router = SimpleRouter()
router.register(r"user/tokens", views.UserTokenViewSet, basename="user-token")
router.register(r"orgs/(?P<org_slug>[^/.]+)/tokens", views.OrganizationTokenViewSet, basename="org-token")

urlpatterns = [
    path("user/", views.UserDetailView.as_view(), name="user-detail"),
    *router.urls,
]
