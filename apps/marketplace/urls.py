"""Catalog pages. URL names are stable (tests and templates use them); the API's names live in ``api:``.

/models/                                              catalog-models            the catalog (search, filters)
/orgs/<org_slug>/models/                              org-models                the organization's Models tab
/orgs/<org_slug>/models/new/                          catalog-model-create      members create a model
/models/<owner>/<name>/                               catalog-model             a model's page
/models/<owner>/<name>/edit/                          catalog-model-edit        members edit the card
/models/<owner>/<name>/delete/                        catalog-model-delete      POST {confirm_name}, admins
/models/<owner>/<name>/new-version/                   catalog-version-create    members start a draft
/models/<owner>/<name>/versions/<label>/              catalog-version           a version's page
/models/<owner>/<name>/versions/<label>/upload/       catalog-version-upload    members upload into a draft
/models/<owner>/<name>/versions/<label>/status/       catalog-version-status    files + validation (htmx)
/models/<owner>/<name>/versions/<label>/publish/      catalog-version-publish   POST, members
/models/<owner>/<name>/versions/<label>/deprecate/    catalog-version-deprecate POST, members
/models/<owner>/<name>/versions/<label>/yank/         catalog-version-yank      POST {reason}, admins
/models/<owner>/<name>/versions/<label>/validate/     catalog-version-validate  POST, members
/models/<owner>/<name>/versions/<label>/files/remove/ catalog-version-file-remove POST {path}, members
/models/<owner>/<name>/versions/<label>/alias/        catalog-version-alias     POST {name}, members
/models/<owner>/<name>/access/                        catalog-model-access      POST: grant (admins)
/models/<owner>/<name>/access/revoke/                 catalog-model-access-revoke POST: revoke a grant (admins)
"""

from __future__ import annotations

from django.urls import path

from apps.marketplace import views

MODEL = "models/<str:owner>/<str:name>"
VERSION = f"{MODEL}/versions/<str:label>"

urlpatterns = [
    path("models/", views.catalog, name="catalog-models"),
    path("orgs/<str:org_slug>/models/", views.OrganizationModelsView.as_view(), name="org-models"),
    path("orgs/<str:org_slug>/models/new/", views.ModelCreateView.as_view(), name="catalog-model-create"),
    path(f"{MODEL}/", views.ModelView.as_view(), name="catalog-model"),
    path(f"{MODEL}/edit/", views.ModelEditView.as_view(), name="catalog-model-edit"),
    path(f"{MODEL}/delete/", views.ModelDeleteView.as_view(), name="catalog-model-delete"),
    path(f"{MODEL}/access/", views.ModelGrantView.as_view(), name="catalog-model-access"),
    path(f"{MODEL}/access/revoke/", views.ModelRevokeView.as_view(), name="catalog-model-access-revoke"),
    path(f"{MODEL}/new-version/", views.VersionCreateView.as_view(), name="catalog-version-create"),
    path(f"{VERSION}/", views.VersionView.as_view(), name="catalog-version"),
    path(f"{VERSION}/upload/", views.UploadView.as_view(), name="catalog-version-upload"),
    path(f"{VERSION}/status/", views.VersionStatusFragment.as_view(), name="catalog-version-status"),
    path(f"{VERSION}/publish/", views.PublishView.as_view(), name="catalog-version-publish"),
    path(f"{VERSION}/deprecate/", views.DeprecateView.as_view(), name="catalog-version-deprecate"),
    path(f"{VERSION}/yank/", views.YankView.as_view(), name="catalog-version-yank"),
    path(f"{VERSION}/validate/", views.ValidateView.as_view(), name="catalog-version-validate"),
    path(f"{VERSION}/files/remove/", views.FileRemoveView.as_view(), name="catalog-version-file-remove"),
    path(f"{VERSION}/alias/", views.AliasSetView.as_view(), name="catalog-version-alias"),
]
