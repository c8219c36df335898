"""SAML service provider routes per organization (included only when SAML can run: settings.SAML_ENABLED)."""

from __future__ import annotations

from django.urls import path

from apps.accounts import saml

urlpatterns = [
    path("orgs/<str:org_slug>/sso/saml/metadata/", saml.SamlMetadataView.as_view(), name="org-saml-metadata"),
    path("orgs/<str:org_slug>/sso/saml/login/", saml.SamlLoginView.as_view(), name="org-saml-login"),
    path("orgs/<str:org_slug>/sso/saml/acs/", saml.SamlAcsView.as_view(), name="org-saml-acs"),
]
