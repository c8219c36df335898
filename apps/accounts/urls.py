from __future__ import annotations

from django.urls import path

from apps.accounts import views

urlpatterns = [
    path("settings/profile/", views.profile, name="account-profile"),
    path("accounts/verification/resend/", views.resend_verification, name="account-verification-resend"),
    path("settings/tokens/", views.tokens, name="account-tokens"),
    path("settings/tokens/<uuid:uuid>/revoke/", views.revoke_token, name="account-token-revoke"),
]
