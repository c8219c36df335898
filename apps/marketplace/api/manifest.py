"""The gpux.yml route of a version: export it for the GPUX CLI, import one into a draft."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import parsing
from apps.core.api.parsers import invalid_text_error
from apps.marketplace import services
from apps.marketplace.api.mixins import AnyContentMixin, ModelLookupMixin
from apps.marketplace.api.schema import LABEL, NAME, OWNER
from apps.marketplace.api.serializers import ManifestImportSerializer, VersionFileSerializer
from apps.marketplace.downloads import cache_control
from apps.marketplace.exceptions import ManifestRefused
from apps.marketplace.models import validate_version_label
from apps.marketplace.onnx.limits import Limits
from apps.marketplace.onnx.manifest import ManifestError, load_yaml, validate_manifest
from apps.marketplace.validation import MANIFEST_PATH, export_version_manifest, import_manifest

MANIFEST_MEDIA_TYPE = "application/yaml; charset=utf-8"
MANIFEST_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
MANIFEST_BODY_LIMIT = Limits.max_manifest_bytes  # a gpux.yml sent as itself
MANIFEST_JSON_BODY_LIMIT = 4 * Limits.max_manifest_bytes  # inside JSON, where escapes make it longer


def _manifest_refusal(exc: ManifestError) -> exceptions.ValidationError:
    return exceptions.ValidationError({"manifest": exc.errors}, code="invalid_manifest")


def label_from_manifest(text: str) -> str:
    """The label of a version created from a gpux.yml: its ``version``, which must be there and be a label."""
    try:
        raw = load_yaml(text)
        manifest = validate_manifest(raw)
    except ManifestError as exc:
        raise _manifest_refusal(exc) from exc
    if raw.get("version") is None:
        raise exceptions.ValidationError(
            {"manifest": ["version: this field is required to label the new version (or send a label)."]},
            code="required",
        )
    label = manifest["version"]
    try:
        validate_version_label(label)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(
            {"manifest": [f"version: “{label}” cannot label a version. {' '.join(exc.messages)}"]},
            code="invalid_label",
        ) from exc
    return label


def _manifest_too_large(limit: int) -> ManifestRefused:
    return ManifestRefused(
        f"The body is larger than {limit} bytes: a gpux.yml may be at most {MANIFEST_BODY_LIMIT} bytes.",
        field="manifest",
        code="manifest_too_large",
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


@extend_schema(tags=["model versions"], parameters=[OWNER, NAME, LABEL])
class VersionManifestView(ModelLookupMixin, AnyContentMixin, APIView):
    """``/models/{owner}/{name}/versions/{label}/manifest``: GET exports a gpux.yml that the GPUX CLI runs (from the
    version's signature and files, keeping what an imported gpux.yml said); PUT imports one into a draft
    (members), replacing its ``gpux.yml``. The stored file itself is ``files/gpux.yml``."""

    parser_classes: list = []  # the body is read here, bounded: a gpux.yml is small

    def get_restrict_action(self) -> str:
        return "view" if self.request.method in ("GET", "HEAD", "OPTIONS") else "change"

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, ManifestRefused):
            exc.add_to(response)
        return response

    @extend_schema(
        summary="The version's gpux.yml for the GPUX CLI (once its validation passed)",
        responses={
            (200, "application/yaml"): OpenApiTypes.STR,
            404: OpenApiResponse(description="No such version, or you may not view the model."),
            409: OpenApiResponse(description="Not validated yet, or no ONNX model file: the body names the field."),
            410: OpenApiResponse(description="The version was yanked."),
        },
    )
    def get(self, request, owner: str, name: str, label: str) -> HttpResponse:
        version = self.version_by_label(label)
        self.refuse_yanked(version, pinned=True)
        try:
            text = export_version_manifest(version)
        except DjangoValidationError as exc:
            field, errors = next(iter(exc.error_dict.items()))
            raise ManifestRefused(
                " ".join(message for error in errors for message in error.messages),
                field=field,
                code=errors[0].code or "not_exportable",
                status_code=status.HTTP_409_CONFLICT,
            ) from exc
        response = HttpResponse(text.encode("utf-8"), content_type=MANIFEST_MEDIA_TYPE)
        response["Content-Disposition"] = 'attachment; filename="gpux.yml"'
        response["Cache-Control"] = cache_control(version, immutable=False)  # the model's card and tags may change
        return response

    @extend_schema(
        summary="Import a gpux.yml into a draft (members): checked field by field and against the model",
        request={
            "application/yaml": OpenApiTypes.STR,
            "text/yaml": OpenApiTypes.STR,
            "text/plain": OpenApiTypes.STR,
            "application/json": ManifestImportSerializer,
        },
        responses={
            200: VersionFileSerializer,
            201: VersionFileSerializer,
            400: OpenApiResponse(description="A bad gpux.yml (each field named by its path), or not a draft."),
            413: OpenApiResponse(description="Larger than a gpux.yml may be (256 KiB)."),
            415: OpenApiResponse(description="Neither YAML, plain text nor JSON."),
        },
    )
    def put(self, request, owner: str, name: str, label: str) -> Response:
        self.require("change")
        version = self.version_by_label(label)
        services._refuse_unless_draft(version, "import a gpux.yml into it")
        text = self._read_manifest(request)
        replacing = version.files.filter(path=MANIFEST_PATH).exists()
        with transaction.atomic():
            self.lock_model("change")
            if replacing:
                # The old gpux.yml goes first; the new one is still checked against the model's signature (``version``
                # keeps it) before it is stored, and a refusal rolls the removal back with everything else.
                services.remove_file(version=version, actor=request.user, path=MANIFEST_PATH)
            version_file = import_manifest(version=version, text=text, actor=request.user)
        data = VersionFileSerializer(version_file, context={"request": request}).data
        return Response(data, status=status.HTTP_200_OK if replacing else status.HTTP_201_CREATED)

    def _read_manifest(self, request) -> bytes | str:
        """The gpux.yml of the body, read with a size cap: YAML (or plain text) as is, or JSON ``{"manifest"}``."""
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        is_json = content_type == "application/json"
        if not is_json and content_type not in MANIFEST_YAML_TYPES:
            raise exceptions.UnsupportedMediaType(
                content_type,
                detail=f"Send the gpux.yml as application/yaml (or text/yaml, text/plain), or as JSON "
                f'{{"manifest": "..."}}; not {content_type or "a body without Content-Type"}.',
            )
        limit = MANIFEST_JSON_BODY_LIMIT if is_json else MANIFEST_BODY_LIMIT
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > limit:
            raise _manifest_too_large(limit)  # refused before reading
        body = request._request.read(limit + 1)
        if len(body) > limit:
            raise _manifest_too_large(limit)
        if not body.strip():
            raise exceptions.ValidationError({"manifest": ["Send the gpux.yml as the request body."]}, code="required")
        if not is_json:
            return body  # bytes: the parser says which byte is not UTF-8
        try:
            envelope = parsing.loads_json(body)
        except parsing.NestingTooDeep as exc:
            raise exceptions.ValidationError({"manifest": [f"The body is {exc}."]}, code="nesting_too_deep") from exc
        except parsing.InvalidText as exc:
            raise invalid_text_error(exc) from exc
        except ValueError as exc:
            raise exceptions.ValidationError(
                {"manifest": [f"The body is not valid JSON: {exc}"]}, code="parse_error"
            ) from exc
        if not isinstance(envelope, dict):
            raise exceptions.ValidationError(
                {"manifest": ['Send JSON {"manifest": "<the gpux.yml text>"}.']}, code="invalid"
            )
        serializer = ManifestImportSerializer(data=envelope)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["manifest"]
