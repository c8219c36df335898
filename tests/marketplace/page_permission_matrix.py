"""The catalog pages in the permission matrix (tests/permissions/matrix.py), from DESIGN.md's role table:
viewers view a model's pages; members create and change (new models, versions, card edits, uploads, publishing,
deprecating, validating, removing a draft's files); admins yank. A private model answers 404 to outsiders; a
public model may be viewed by anyone and changed by no one outside its organization (403). Anonymous visitors
are sent to sign in, except to read a public model. A draft version's pages are for those who may change the
model (members and up): 404 to everyone else, on a public model too (docs/api/models.md, "Who sees which version").

Model pages are not under /orgs/<slug>/: the model's own visibility decides, so each route is listed twice,
once for a private model and once for a public one (the ``?model=`` query keeps their test ids apart; the pages
ignore it), and the organization's public slice of the matrix does not apply (``under_org=False``).
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.access import Visibility
from tests.permissions.matrix import DONE, LOGIN, PAGE_ORG_READ, Access, Route, Scene, acme, table


# The same expectations whatever the organization's visibility: the model's visibility decides.
def _same(**row: Any) -> Access:
    expected = table(**row)
    return Access(private=expected, public=expected)


PRIVATE_MODEL_READ = _same(owner=DONE, admin=DONE, member=DONE, viewer=DONE, outsider=404, anonymous=LOGIN)
PRIVATE_MODEL_CHANGE = _same(owner=DONE, admin=DONE, member=DONE, viewer=403, outsider=404, anonymous=LOGIN)
PRIVATE_MODEL_DELETE = _same(owner=DONE, admin=DONE, member=403, viewer=403, outsider=404, anonymous=LOGIN)
PUBLIC_MODEL_READ = _same(owner=DONE, admin=DONE, member=DONE, viewer=DONE, outsider=DONE, anonymous=DONE)
PUBLIC_MODEL_CHANGE = _same(owner=DONE, admin=DONE, member=DONE, viewer=403, outsider=403, anonymous=LOGIN)
PUBLIC_MODEL_DELETE = _same(owner=DONE, admin=DONE, member=403, viewer=403, outsider=403, anonymous=LOGIN)
# /orgs/<slug>/models/new/: members of the organization (its public slice: outsiders 403)
PAGE_ORG_MEMBER = Access(
    private=table(DONE, DONE, DONE, 403, 404, LOGIN),
    public=table(DONE, DONE, DONE, 403, 403, LOGIN),
)
PRIVATE_DRAFT_READ = _same(owner=DONE, admin=DONE, member=DONE, viewer=404, outsider=404, anonymous=LOGIN)
PUBLIC_DRAFT_READ = _same(owner=DONE, admin=DONE, member=DONE, viewer=404, outsider=404, anonymous=404)
EVERYONE = _same(owner=DONE, admin=DONE, member=DONE, viewer=DONE, outsider=DONE, anonymous=DONE)


def _iris() -> bytes:
    from tests.marketplace.conftest import iris_bytes

    return iris_bytes()


def _model(scene: Scene, visibility: str):
    from apps.marketplace import services

    return scene.once(
        f"model-{visibility}",
        lambda s: services.create_model(
            organization=s.org, actor=s.user("member"), name=f"iris-{visibility}", visibility=visibility
        ),
    )


def _version(scene: Scene, visibility: str, state: str):
    """Version ``1.0.0`` of the scene's model: ``draft`` (empty), ``validated`` (iris, validation passed) or
    ``published``."""
    from apps.marketplace import services
    from apps.marketplace.models import ModelVersion, ValidationStatus

    def build(s: Scene):
        model = _model(s, visibility)
        member = s.user("member")
        version = services.create_version(model=model, actor=member, label="1.0.0")
        if state == "draft":
            return version
        services.add_file(
            version=version, actor=member, path="model.onnx", uploaded=SimpleUploadedFile("model.onnx", _iris())
        )
        ModelVersion.objects.filter(pk=version.pk).update(validation_status=ValidationStatus.PASSED)
        version.refresh_from_db()
        if state == "published":
            version = services.publish_version(version=version, actor=member)
        return version

    return scene.once(f"version-{visibility}", build)


def model_kwargs(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        model = _model(scene, visibility)
        return {"owner": model.organization.slug, "name": model.name}

    return kwargs


def version_kwargs(visibility: str, state: str = "draft"):
    def kwargs(scene: Scene, persona: str) -> dict:
        version = _version(scene, visibility, state)
        return {"owner": version.model.organization.slug, "name": version.model.name, "label": version.label}

    return kwargs


def _granted_model(visibility: str):
    """The model's kwargs, after acme's owner granted run on it to acme's team ``core``."""

    def kwargs(scene: Scene, persona: str) -> dict:
        from apps.organizations.grants import grant_access

        model = _model(scene, visibility)
        scene.once(
            f"model-grant-{visibility}",
            lambda s: grant_access(
                obj=model, actor=s.owner, grantee_type="team", grantee=s.team.slug, permission="run"
            ),
        )
        return {"owner": model.organization.slug, "name": model.name}

    return kwargs


def _routes_for(visibility: str) -> list[Route]:
    private = visibility == Visibility.PRIVATE
    read = PRIVATE_MODEL_READ if private else PUBLIC_MODEL_READ
    change = PRIVATE_MODEL_CHANGE if private else PUBLIC_MODEL_CHANGE
    delete = PRIVATE_MODEL_DELETE if private else PUBLIC_MODEL_DELETE
    draft_read = PRIVATE_DRAFT_READ if private else PUBLIC_DRAFT_READ
    query = {"model": visibility}
    model, draft = model_kwargs(visibility), version_kwargs(visibility)
    validated, published = version_kwargs(visibility, "validated"), version_kwargs(visibility, "published")
    card = {"summary": "Changed", "card": "# Changed", "visibility": visibility, "tags": "", "task": "", "license": ""}
    return [
        Route("catalog-model", "GET", read, model, query=query, under_org=False),
        Route("catalog-model-edit", "GET", change, model, query=query, under_org=False),
        Route("catalog-model-edit", "POST", change, model, lambda s, p: card, query=query, under_org=False),
        Route(
            "catalog-model-delete",
            "POST",
            delete,
            model,
            lambda s, p: {"confirm_name": _model(s, visibility).name},
            query=query,
            under_org=False,
        ),
        # the Access panel's forms: the model's admins and owners grant and revoke
        Route(
            "catalog-model-access",
            "POST",
            delete,
            model,
            lambda s, p: {"grantee_type": "team", "grantee": s.team.slug, "permission": "run"},
            query=query,
            under_org=False,
        ),
        Route(
            "catalog-model-access-revoke",
            "POST",
            delete,
            _granted_model(visibility),
            lambda s, p: {"grantee_type": "team", "grantee": s.team.slug, "permission": "run"},
            query=query,
            under_org=False,
        ),
        Route("catalog-version-create", "GET", change, model, query=query, under_org=False),
        Route(
            "catalog-version-create",
            "POST",
            change,
            model,
            lambda s, p: {"label": "2.0.0"},
            query=query,
            under_org=False,
        ),
        Route("catalog-version", "GET", read, published, query=query, under_org=False),
        Route("catalog-version-status", "GET", read, published, query=query, under_org=False),
        Route("catalog-version", "GET", draft_read, draft, query={**query, "version": "draft"}, under_org=False),
        Route("catalog-version-status", "GET", draft_read, draft, query={**query, "version": "draft"}, under_org=False),
        Route("catalog-version-upload", "GET", change, draft, query=query, under_org=False),
        Route("catalog-version-publish", "POST", change, validated, query=query, under_org=False),
        Route("catalog-version-validate", "POST", change, validated, query=query, under_org=False),
        Route(
            "catalog-version-file-remove",
            "POST",
            change,
            validated,
            lambda s, p: {"path": "model.onnx"},
            query=query,
            under_org=False,
        ),
        Route("catalog-version-deprecate", "POST", change, published, query=query, under_org=False),
        Route(
            "catalog-version-alias",
            "POST",
            change,
            published,
            lambda s, p: {"name": "production"},
            query=query,
            under_org=False,
        ),
        Route(
            "catalog-version-yank",
            "POST",
            delete,
            published,
            lambda s, p: {"reason": "Wrong labels."},
            query=query,
            under_org=False,
        ),
    ]


PAGE_ROUTES: list[Route] = [
    Route("catalog-models", "GET", EVERYONE, lambda s, p: {}, under_org=False),
    Route("org-models", "GET", PAGE_ORG_READ, acme, note="the organization's Models tab: each sees what they may view"),
    Route("catalog-model-create", "GET", PAGE_ORG_MEMBER, acme),
    Route(
        "catalog-model-create",
        "POST",
        PAGE_ORG_MEMBER,
        acme,
        lambda s, p: {"name": "new-model", "visibility": "private"},
    ),
    *_routes_for(Visibility.PRIVATE),
    *_routes_for(Visibility.PUBLIC),
]
