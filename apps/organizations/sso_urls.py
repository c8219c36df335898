"""Single sign-on pages: the SSO settings, domains, SCIM token, and the sign-in step that finds an address's IdP."""

from __future__ import annotations

from django.urls import path

from apps.organizations import sso_views as views

urlpatterns = [
    path("sso/", views.sso_sign_in, name="sso-sign-in"),
    path("sso/domains/verify/<str:token>/", views.domain_verify_link, name="domain-verify-link"),
    path("orgs/<str:org_slug>/sso/", views.SsoView.as_view(), name="org-sso"),
    path("orgs/<str:org_slug>/sso/require/", views.RequireSsoView.as_view(), name="org-sso-require"),
    path("orgs/<str:org_slug>/sso/mappings/", views.GroupMappingAddView.as_view(), name="org-sso-mapping-add"),
    path(
        "orgs/<str:org_slug>/sso/mappings/<uuid:uuid>/delete/",
        views.GroupMappingDeleteView.as_view(),
        name="org-sso-mapping-delete",
    ),
    path("orgs/<str:org_slug>/sso/domains/", views.DomainAddView.as_view(), name="org-domain-add"),
    path(
        "orgs/<str:org_slug>/sso/domains/<uuid:uuid>/verify/",
        views.DomainVerifyView.as_view(),
        name="org-domain-verify",
    ),
    path(
        "orgs/<str:org_slug>/sso/domains/<uuid:uuid>/email/", views.DomainEmailView.as_view(), name="org-domain-email"
    ),
    path(
        "orgs/<str:org_slug>/sso/domains/<uuid:uuid>/delete/",
        views.DomainDeleteView.as_view(),
        name="org-domain-delete",
    ),
    path("orgs/<str:org_slug>/scim/", views.ScimPageView.as_view(), name="org-scim"),
    path("orgs/<str:org_slug>/scim/<uuid:uuid>/revoke/", views.ScimRevokeView.as_view(), name="org-scim-revoke"),
]
