"""allauth's OpenID Connect URLs (same paths and names), served by the portal's views."""

from __future__ import annotations

from django.urls import include, path

from apps.accounts.oidc import views

urlpatterns = [
    path(
        "oidc/<str:provider_id>/",
        include(
            [
                path("login/", views.login, name="openid_connect_login"),
                path("login/callback/", views.callback, name="openid_connect_callback"),
            ]
        ),
    )
]
