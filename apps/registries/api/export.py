"""An organization's catalog as an HTTP index (docs/registries/http-index-format.md), for another portal or tool.

``GET /api/v1/orgs/{org}/registry-index.jsonl`` streams JSON Lines: a header, then one line per model the
caller may view, with its published and deprecated versions and their files (size, SHA-256 and an absolute
download URL on this portal). Another GPUX Portal syncs it with the ``http-index`` backend and a token of
this portal; what the token may not see is not in the index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import Prefetch
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from apps.core.api.views import bound_organization_id
from apps.marketplace.models import Model, ModelVersion, VersionFile, VersionStatus
from apps.organizations.api.views import ORG_SLUG
from apps.organizations.models import Organization

CHUNK = 500


def index_lines(request, organization: Organization) -> Iterator[bytes]:
    """The header line, then one line per visible model, fetched in chunks (flat memory for any catalog)."""
    header = {
        "gpux_index": 1,
        "name": f"{organization.name} ({organization.slug}) on GPUX Portal",
        "generated_at": timezone.now().isoformat(),
    }
    yield (json.dumps(header) + "\n").encode()
    versions = ModelVersion.objects.filter(
        status__in=[VersionStatus.PUBLISHED, VersionStatus.DEPRECATED]
    ).prefetch_related(Prefetch("files", VersionFile.objects.select_related("blob").order_by("path")), "aliases")
    models = (
        Model.objects.restrict(request.user, "view", within_organization=bound_organization_id(request))
        .filter(organization=organization)
        .order_by("name")
        .prefetch_related(Prefetch("versions", versions.order_by("created_at", "id")))
    )
    for model in models.iterator(chunk_size=CHUNK):
        entry = {
            "id": model.name,
            "name": model.name,
            "summary": model.summary,
            "card": model.card,
            "task": model.task,
            "tags": model.tags,
            "license": model.license,
            "url": request.build_absolute_uri(
                reverse("catalog-model", kwargs={"owner": organization.slug, "name": model.name})
            ),
            "updated_at": model.updated_at.isoformat(),
            "versions": [
                {
                    "label": version.label,
                    "aliases": sorted(alias.name for alias in version.aliases.all()),
                    "description": version.changelog[:2000],
                    "created_at": version.created_at.isoformat(),
                    "files": [
                        {
                            "path": version_file.path,
                            "size": version_file.blob.size,
                            "sha256": version_file.blob.sha256,
                            "url": request.build_absolute_uri(
                                reverse(
                                    "api:model-version-file-detail",
                                    kwargs={
                                        "owner": organization.slug,
                                        "name": model.name,
                                        "label": version.label,
                                        "path": version_file.path,
                                    },
                                )
                            ),
                        }
                        for version_file in version.files.all()
                    ],
                }
                for version in model.versions.all()
            ],
        }
        yield (json.dumps(entry, separators=(",", ":")) + "\n").encode()


@extend_schema(
    tags=["registries"],
    summary="The organization's catalog in the HTTP-index format (JSON Lines, streamed)",
    description="What the caller may view: another portal syncs it with the `http-index` backend.",
    parameters=[ORG_SLUG],
    responses={200: OpenApiResponse(description="application/jsonl: a header line, then one model per line.")},
)
class CatalogIndexView(APIView):
    def get(self, request, org_slug: str):
        visible = Organization.objects.restrict(
            request.user, "view", within_organization=bound_organization_id(request)
        )
        organization = get_object_or_404(visible, slug=org_slug)
        response = StreamingHttpResponse(index_lines(request, organization), content_type="application/jsonl")
        response["Cache-Control"] = "private, no-cache"
        response["Content-Disposition"] = f'inline; filename="{organization.slug}-index.jsonl"'
        return response
