"""Routes of the catalog API (names in the ``api`` namespace, all starting ``model-``).

/models/                                                    model-list                     GET (search, filters)
/orgs/{org_slug}/models/                                    model-org-list                 GET, POST (create)
/orgs/{org_slug}/storage/                                   model-org-storage              GET
/models/{owner}/{name}/                                     model-detail                   GET, PATCH, DELETE (soft)
/models/{owner}/{name}/restore/                             model-restore                  POST
/models/{owner}/{name}/versions/                            model-version-list             GET, POST (a gpux.yml too)
/models/{owner}/{name}/versions/{label}/                    model-version-detail           GET, PATCH
/models/{owner}/{name}/versions/{label}/publish/            model-version-publish          POST
/models/{owner}/{name}/versions/{label}/deprecate/          model-version-deprecate        POST
/models/{owner}/{name}/versions/{label}/yank/               model-version-yank             POST
/models/{owner}/{name}/versions/{label}/validate/           model-version-validate         POST
/models/{owner}/{name}/versions/{label}/manifest            model-version-manifest         GET (export), PUT (import)
/models/{owner}/{name}/versions/{label}/files/              model-version-file-list        GET, POST (multipart)
/models/{owner}/{name}/versions/{label}/files/{path}        model-version-file-detail      GET, HEAD, DELETE
/models/{owner}/{name}/versions/{label}/links/{path}        model-version-file-link        GET (signed URL)
/models/{owner}/{name}/versions/{label}/uploads/            model-version-upload-list      GET (open ones), POST
/uploads/{uuid}/                                            model-upload-detail            GET, HEAD, PATCH, DELETE
/uploads/{uuid}/complete/                                   model-upload-complete          POST
/models/{owner}/{name}/aliases/                             model-alias-list               GET, PUT
/models/{owner}/{name}/aliases/{alias}/                     model-alias-detail             GET
/models/{owner}/{name}/aliases/{alias}/files/{path}         model-alias-file-detail        GET, HEAD
/models/{owner}/{name}/grants/                              model-grant-list               GET, POST (grant access)
/models/{owner}/{name}/grants/{type}/{grantee}/{permission}/  model-grant-detail           DELETE (revoke)
/blobs/sha256/{sha256}                                      model-blob-download            GET, HEAD
"""

from __future__ import annotations

from django.urls import path, re_path

from apps.marketplace.api import files, manifest, uploads, views
from apps.marketplace.api.grants import ModelGrantDetailView, ModelGrantListView

MODEL = "models/<str:owner>/<str:name>"
VERSION = f"{MODEL}/versions/<str:label>"

model_list = views.ModelViewSet.as_view({"get": "list"})
model_detail = views.ModelViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
org_models = views.OrganizationModelViewSet.as_view({"get": "list", "post": "create"})
version_list = views.VersionViewSet.as_view({"get": "list", "post": "create"})
version_detail = views.VersionViewSet.as_view({"get": "retrieve", "patch": "partial_update"})
file_list = files.VersionFileViewSet.as_view({"get": "list", "post": "create"})


def version_action(name: str):
    """A route for a VersionViewSet @action, with the action's own options (its restrict_action)."""
    return views.VersionViewSet.as_view({"post": name}, detail=True, **getattr(views.VersionViewSet, name).kwargs)


urlpatterns = [
    path("models/", model_list, name="model-list"),
    path("orgs/<str:org_slug>/models/", org_models, name="model-org-list"),
    path("orgs/<str:org_slug>/storage/", views.OrganizationStorageView.as_view(), name="model-org-storage"),
    path(f"{MODEL}/", model_detail, name="model-detail"),
    path(f"{MODEL}/restore/", views.ModelRestoreView.as_view(), name="model-restore"),
    path(f"{MODEL}/versions/", version_list, name="model-version-list"),
    path(f"{VERSION}/", version_detail, name="model-version-detail"),
    path(f"{VERSION}/publish/", version_action("publish"), name="model-version-publish"),
    path(f"{VERSION}/deprecate/", version_action("deprecate"), name="model-version-deprecate"),
    path(f"{VERSION}/yank/", version_action("yank"), name="model-version-yank"),
    path(f"{VERSION}/validate/", version_action("validate"), name="model-version-validate"),
    path(f"{VERSION}/manifest", manifest.VersionManifestView.as_view(), name="model-version-manifest"),
    path(f"{VERSION}/files/", file_list, name="model-version-file-list"),
    path(f"{VERSION}/files/<path:path>", files.VersionFileDownloadView.as_view(), name="model-version-file-detail"),
    path(f"{VERSION}/links/<path:path>", files.VersionFileLinkView.as_view(), name="model-version-file-link"),
    path(f"{VERSION}/uploads/", uploads.UploadSessionCreateView.as_view(), name="model-version-upload-list"),
    path("uploads/<uuid:uuid>/", uploads.UploadSessionView.as_view(), name="model-upload-detail"),
    path("uploads/<uuid:uuid>/complete/", uploads.UploadSessionCompleteView.as_view(), name="model-upload-complete"),
    path(f"{MODEL}/aliases/", views.AliasListView.as_view(), name="model-alias-list"),
    path(f"{MODEL}/aliases/<str:alias>/", views.AliasDetailView.as_view(), name="model-alias-detail"),
    path(
        f"{MODEL}/aliases/<str:alias>/files/<path:path>",
        views.AliasFileDownloadView.as_view(),
        name="model-alias-file-detail",
    ),
    path(f"{MODEL}/grants/", ModelGrantListView.as_view(), name="model-grant-list"),
    path(
        f"{MODEL}/grants/<str:grantee_type>/<path:grantee>/<str:permission>/",
        ModelGrantDetailView.as_view(),
        name="model-grant-detail",
    ),
    re_path(r"^blobs/sha256/(?P<sha256>[0-9a-f]{64})$", files.BlobDownloadView.as_view(), name="model-blob-download"),
]
