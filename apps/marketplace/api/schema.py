"""The OpenAPI parameters and responses the catalog API's routes share (path parts, download headers)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

OWNER = OpenApiParameter(
    "owner", str, OpenApiParameter.PATH, description="The owning organization's slug or user's handle."
)
NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="The model's name.")
LABEL = OpenApiParameter("label", str, OpenApiParameter.PATH, description="The version's label, e.g. 1.0.0.")
FILE_PATH = OpenApiParameter("path", str, OpenApiParameter.PATH, description="The file's path in the version.")
ALIAS = OpenApiParameter("alias", str, OpenApiParameter.PATH, description="The alias, e.g. production.")
UPLOAD_UUID = OpenApiParameter("uuid", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The upload session.")
SHA256 = OpenApiParameter("sha256", str, OpenApiParameter.PATH, description="The blob's SHA-256, 64 hex digits.")
ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
RANGE = OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False, description="e.g. bytes=0-1023")
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER, required=False, description="The ETag you hold: 304 when unchanged."
)
TOKEN = OpenApiParameter("token", str, OpenApiParameter.QUERY, required=False, description="A signed download token.")
UPLOAD_OFFSET = OpenApiParameter(
    "Upload-Offset", int, OpenApiParameter.HEADER, required=False, description="Where this chunk starts (or ?offset=)."
)
BINARY_RESPONSES = {
    (200, "application/octet-stream"): OpenApiTypes.BINARY,
    (206, "application/octet-stream"): OpenApiTypes.BINARY,
    304: OpenApiResponse(description="Not modified: your copy (If-None-Match) is current."),
    404: OpenApiResponse(description="No such file, or you may not view the model."),
    410: OpenApiResponse(description="The version was yanked."),
    416: OpenApiResponse(description="No requested range overlaps the file."),
}
