"""The gpux.yml routes of the catalog API in the permission matrix (tests/permissions/matrix.py), from DESIGN.md's
role table and the catalog's rules (docs/api/models.md, "gpux.yml"), never read back from the code:

    viewer  exports a version's gpux.yml (GET .../versions/{label}/manifest), as it downloads the version's files
    member  + imports one into a draft (PUT .../manifest), creates a draft from one (POST .../versions/ with manifest)

As for every model route (tests/marketplace/matrix_api.py), the model's own visibility decides: each route is listed
for a private and a public model (``?model=`` keeps their test ids apart; the API ignores it).

The version exported is the published iris classifier with its real signature (extracted from the file by the
validation's own code, so the export has something to write); the draft imported into holds iris as model.onnx
with that signature, so the gpux.yml sent is also checked against the model.
"""

from __future__ import annotations

from typing import Any

from tests.marketplace.matrix_api import PRIVATE, PUBLIC, for_model, iris, model_kwargs, version
from tests.permissions.matrix import MEMBER_WRITE, ORG_READ, Access, Route, Scene

IRIS_MANIFEST = """\
name: iris
version: 2.0.0
model: {source: ./model.onnx}
inputs:
  float_input: {type: float32, shape: [3, 2]}
outputs:
  label: {type: int64, shape: [3], labels: [setosa, versicolor, virginica]}
runtime: {gpu: {memory: 1GB}, batch_size: 4}
"""


def signed_version(scene: Scene, visibility: str, state: str):
    """The model's version 1.0.0 in ``state`` (matrix_api's states), with the iris model's real signature."""
    import onnx

    from apps.marketplace.models import ModelVersion
    from apps.marketplace.onnx.signature import extract_signature

    def build(s: Scene):
        made = version(s, visibility, state)
        signature = extract_signature(onnx.load_from_string(iris()))
        ModelVersion.objects.filter(pk=made.pk).update(signature=signature)
        made.refresh_from_db()
        return made

    return scene.once(f"manifest-version-{visibility}", build)


def manifest_kwargs(visibility: str, state: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        made = signed_version(scene, visibility, state)
        return {"owner": made.model.organization.slug, "name": made.model.name, "label": made.label}

    return kwargs


def iris_manifest(scene: Scene, persona: str) -> dict:
    return {"manifest": IRIS_MANIFEST.replace("version: 2.0.0", "version: 1.0.0")}


def new_version_manifest(scene: Scene, persona: str) -> dict:
    return {"manifest": IRIS_MANIFEST}  # creates draft 2.0.0 beside 1.0.0


def manifest_routes(visibility: str) -> list[Route]:
    read, write = for_model(ORG_READ, visibility), for_model(MEMBER_WRITE, visibility)

    def route(name: str, method: str, access: Access, kwargs, body=None, **options: Any) -> Route:
        options["query"] = {"model": visibility, **options.get("query", {})}
        options.update(under_org=visibility == PRIVATE, of_acme=visibility == PUBLIC)
        return Route(f"api:{name}", method, access, kwargs, body, **options)

    return [
        route("model-version-manifest", "GET", read, manifest_kwargs(visibility, "published")),
        route("model-version-manifest", "PUT", write, manifest_kwargs(visibility, "with-model"), iris_manifest),
        route(
            "model-version-list",
            "POST",
            write,
            model_kwargs(visibility),
            new_version_manifest,
            query={"from": "manifest"},
        ),
    ]


MANIFEST_ROUTES: list[Route] = [*manifest_routes(PRIVATE), *manifest_routes(PUBLIC)]
