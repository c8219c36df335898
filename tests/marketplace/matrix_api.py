"""The catalog API in the permission matrix (tests/permissions/matrix.py), from DESIGN.md's role table and the
catalog's documented rules (docs/api/models.md, docs/user/models.md), never read back from the code:

    viewer  views a model of the org: the model, its versions, files, aliases, downloads, signed links
    member  + creates models and versions, uploads (multipart and resumable), publishes, deprecates, validates,
              moves aliases, edits the card, changes a draft's changelog, removes a draft's files
    admin   + deletes (soft) and restores models, yanks versions

A model's own visibility decides who sees it, not its organization's: a private model answers 404 to an outsider
on every route (its versions, files, aliases, uploads and blobs included), whether acme is private or public; a
public model may be read and downloaded by anyone, anonymous included, and changed by no one outside acme (403
signed in, 401 anonymous). So each model route is listed twice, for a private and for a public model (``?model=``
keeps their test ids apart; the API ignores it). The private model's routes run with acme private and with acme
public, with the same expectations: a public organization does not open its private models.

A public model is public whichever acme's visibility, so its routes run once (``under_org=False``), as routes
on an object of acme (``of_acme=True``) for the token slice (tests/permissions/test_api_token_scope_and_binding.py):
with a ``read`` token every write answers 403 ``insufficient_scope``; a token bound to another organization gets
404 on everything of a private model and reads a public one as an outsider would, without changing it (403 or
404); a token bound to acme acts as an unbound one.

Decisions where the documents are silent:

* a soft-deleted model "disappears everywhere" and exists only for those who may restore it (admins), so
  restoring it is refused to the others with 403 or 404, as for the matrix's admin-only objects;
* upload sessions belong to the members who may change the model: a viewer, and anyone outside acme even on a
  public model, may not read one (403) — its bytes are not published;
* a draft version is seen only by those who may change the model (docs/api/models.md, "Who sees which version"):
  routes on one draft (its changelog, publishing, validating, its upload sessions) answer 404 to the viewer and
  to outsiders, on a public model too; routes that check the right to change the model before they look the draft
  up (uploading into it, listing its sessions) answer 403 as before;
* an upload chunk (PATCH) writes no audit event: the session's start, completion and abort do
  (docs/api/models.md, "Audit trail").

Objects are made per test through the catalog's services (fresh for every case, so DELETE, yank and complete never
meet another case's leftovers), with the real iris model of ``onnxruntime.datasets`` where a file is needed.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.access import Visibility
from tests.permissions.matrix import (
    ADMIN_OBJECT_WRITE,
    ADMIN_WRITE,
    HIDDEN_FROM_ANONYMOUS,
    LISTED_TO_ADMINS,
    MEMBER_WRITE,
    OK,
    ORG_READ,
    PUBLIC_LISTING,
    REFUSED_TO_ANONYMOUS,
    Access,
    Route,
    Scene,
    acme,
    no_kwargs,
    table,
)

PRIVATE, PUBLIC = Visibility.PRIVATE, Visibility.PUBLIC
CHUNK = b"setosa\nversicolor\nvirginica\n"  # labels.txt, sent as one chunk of a resumable upload


@cache
def iris() -> bytes:
    """The logistic-regression iris classifier that ships with ONNX Runtime (a real model, 670 bytes)."""
    from onnxruntime.datasets import get_example

    return Path(get_example("logreg_iris.onnx")).read_bytes()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- access: the role table's patterns, for a model of the given visibility ------------------------------------
def for_model(pattern: Access, visibility: str) -> Access:
    """The pattern's row for a private model (its ``private`` row) or a public one (its ``public`` row), in both
    slices of the matrix: the model's visibility decides, whatever acme's."""
    row = pattern.private if visibility == PRIVATE else pattern.public
    return Access(private=row, public=row)


#                       owner admin member viewer  outsider  anonymous
MEMBER_READ = Access(  # reading what only those who may change the model use (open upload sessions)
    private=table(OK, OK, OK, 403, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, OK, 403, 403, REFUSED_TO_ANONYMOUS),
)
ORG_MEMBERS_READ = Access(  # the organization's storage usage: its members (viewers and up), even when it is public
    private=table(OK, OK, OK, OK, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, OK, OK, 403, REFUSED_TO_ANONYMOUS),
)
DRAFT_WRITE = Access(  # changing one draft: those who may change the model see it; 404 to the others
    private=table(OK, OK, OK, 404, 404, 401),
    public=table(OK, OK, OK, 404, 404, 401),
)
DRAFT_READ = Access(  # reading one draft's upload session: likewise
    private=table(OK, OK, OK, 404, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, OK, 404, 404, HIDDEN_FROM_ANONYMOUS),
)
LISTED_MODEL = Access(  # a model of acme in a list: members of acme, and anyone when the model is public
    private=table(True, True, True, True, False, False),
    public=table(True, True, True, True, True, True),
)

LISTED_TO_CHANGERS = Access(  # an open upload session: those who may change the model
    private=table(True, True, True, False, False, False),
    public=table(True, True, True, False, False, False),
)


# --- the objects routes act on (one model and at most one version per test) -------------------------------------
def model(scene: Scene, visibility: str):
    """Model ``iris-<visibility>`` of acme, made by its member."""
    from apps.marketplace import services

    return scene.once(
        f"api-model-{visibility}",
        lambda s: services.create_model(
            organization=s.org, actor=s.user("member"), name=f"iris-{visibility}", visibility=visibility
        ),
    )


def deleted_model(scene: Scene, visibility: str):
    """The model, soft-deleted by acme's admin (restorable)."""
    from apps.marketplace import services

    return scene.once(
        f"api-deleted-model-{visibility}",
        lambda s: services.soft_delete_model(model=model(s, visibility), actor=s.user("admin")),
    )


STATES = ("draft", "with-model", "validated", "published", "aliased", "yanked")


def version(scene: Scene, visibility: str, state: str):
    """Version ``1.0.0`` of the model, made by the member: an empty ``draft``; a draft ``with-model`` (iris as
    ``model.onnx``); ``validated`` (validation passed); ``published``; ``aliased`` (published, ``production``
    points at it); ``yanked`` (published, then yanked by the admin). One version per test: the first state asked
    for is the one made."""
    from apps.marketplace import services
    from apps.marketplace.models import ModelVersion, ValidationStatus

    def build(s: Scene):
        member = s.user("member")
        made = services.create_version(model=model(s, visibility), actor=member, label="1.0.0")
        if state == "draft":
            return made
        uploaded = SimpleUploadedFile("model.onnx", iris())
        # The iris model passes the upload-time checks (tests/marketplace/test_onnx_upload_precheck.py); skipping
        # their child process here keeps the scene cheap. Uploads through the routes below run them.
        services.add_file(version=made, actor=member, path="model.onnx", uploaded=uploaded, precheck=False)
        if state == "with-model":
            made.refresh_from_db()
            return made
        ModelVersion.objects.filter(pk=made.pk).update(validation_status=ValidationStatus.PASSED)
        made.refresh_from_db()
        if state == "validated":
            return made
        made = services.publish_version(version=made, actor=member)
        if state == "aliased":
            services.set_alias(model=made.model, actor=member, name="production", version=made)
        if state == "yanked":
            made = services.yank_version(version=made, actor=s.user("admin"), reason="Wrong labels.")
        return made

    assert state in STATES, state
    return scene.once(f"api-version-{visibility}", build)


def upload_session(scene: Scene, visibility: str, state: str):
    """An upload session of the member into the draft: ``open`` (labels.txt, nothing sent yet) or ``full``
    (iris as model.onnx, every byte sent, ready to complete)."""
    from io import BytesIO

    from apps.marketplace import uploads

    def build(s: Scene):
        draft = version(s, visibility, "draft")
        data = CHUNK if state == "open" else iris()
        path = "labels.txt" if state == "open" else "model.onnx"
        session = uploads.create_upload_session(
            version=draft, actor=s.user("member"), path=path, size=len(data), sha256=sha256_of(data)
        )
        if state == "full":
            session = uploads.write_chunk(session=session, offset=0, stream=BytesIO(data), length=len(data))
        return session

    return scene.once(f"api-upload-{visibility}", build)


# --- URL kwargs ---------------------------------------------------------------------------------------------------
def model_kwargs(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        made = model(scene, visibility)
        return {"owner": made.organization.slug, "name": made.name}

    return kwargs


def deleted_model_kwargs(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        made = deleted_model(scene, visibility)
        return {"owner": made.organization.slug, "name": made.name}

    return kwargs


def version_kwargs(visibility: str, state: str, **extra: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        made = version(scene, visibility, state)
        return {"owner": made.model.organization.slug, "name": made.model.name, "label": made.label, **extra}

    return kwargs


def alias_kwargs(visibility: str, **extra: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        made = version(scene, visibility, "aliased")
        return {"owner": made.model.organization.slug, "name": made.model.name, "alias": "production", **extra}

    return kwargs


def blob_kwargs(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        made = version(scene, visibility, "published")
        return {"sha256": made.files.get(path="model.onnx").blob.sha256}

    return kwargs


def upload_kwargs(visibility: str, state: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        return {"uuid": upload_session(scene, visibility, state).uuid}

    return kwargs


# --- bodies -------------------------------------------------------------------------------------------------------
def iris_upload(scene: Scene, persona: str) -> dict:
    return {"file": SimpleUploadedFile("model.onnx", iris(), content_type="application/octet-stream")}


def iris_declared(scene: Scene, persona: str) -> dict:
    data = iris()
    return {"path": "model.onnx", "size": len(data), "sha256": sha256_of(data)}


def model_routes(visibility: str) -> list[Route]:
    """Every route under /models/{owner}/{name}/ (and the uploads and blobs of its versions), for one model."""
    read, write = for_model(ORG_READ, visibility), for_model(MEMBER_WRITE, visibility)
    delete, restore = for_model(ADMIN_WRITE, visibility), for_model(ADMIN_OBJECT_WRITE, visibility)
    members_read, listed = for_model(MEMBER_READ, visibility), for_model(LISTED_MODEL, visibility)
    draft_write, draft_read = for_model(DRAFT_WRITE, visibility), for_model(DRAFT_READ, visibility)
    query = {"model": visibility}
    the_model, draft = model_kwargs(visibility), version_kwargs(visibility, "draft")
    with_model, validated = version_kwargs(visibility, "with-model"), version_kwargs(visibility, "validated")
    published = version_kwargs(visibility, "published")
    published_file = version_kwargs(visibility, "published", path="model.onnx")
    draft_file = version_kwargs(visibility, "with-model", path="model.onnx")

    def route(name: str, method: str, access: Access, kwargs, body=None, **options: Any) -> Route:
        options["query"] = {**query, **options.get("query", {})}
        if "under_org" not in options:
            # A private model also runs in the slice where acme is public (which must not open it); a public one
            # is public in either, so it runs once, and in the token-binding tests as an object of acme.
            options.update(under_org=visibility == PRIVATE, of_acme=visibility == PUBLIC)
        return Route(f"api:{name}", method, access, kwargs, body, **options)

    return [
        # the catalog: anyone may ask; the model is listed to whoever may view it
        route(
            "model-list",
            "GET",
            PUBLIC_LISTING,
            no_kwargs,
            under_org=False,
            lists=lambda s: model(s, visibility).name,
            listed=listed,
        ),
        # the model
        route("model-detail", "GET", read, the_model),
        route("model-detail", "PATCH", write, the_model, lambda s, p: {"summary": "Changed", "card": "# Changed"}),
        route("model-detail", "DELETE", delete, the_model),
        route(
            "model-restore",
            "POST",
            restore,
            deleted_model_kwargs(visibility),
            note="a deleted model exists only for those who may restore it: 403 or 404 to the others",
        ),
        # versions
        route(
            "model-version-list",
            "GET",
            read,
            the_model,
            lists=lambda s: version(s, visibility, "published").label,
            listed=listed,
        ),
        route("model-version-list", "POST", write, the_model, lambda s, p: {"label": "2.0.0"}),
        route("model-version-detail", "GET", read, published),
        route("model-version-detail", "PATCH", draft_write, draft, lambda s, p: {"changelog": "Fixed the labels."}),
        route("model-version-publish", "POST", draft_write, validated),
        route("model-version-deprecate", "POST", write, published, lambda s, p: {"message": "Use 2.0.0."}),
        route("model-version-yank", "POST", delete, published, lambda s, p: {"reason": "Wrong labels."}),
        route("model-version-validate", "POST", draft_write, with_model),
        # files: list, upload (multipart), download, remove from a draft, signed links
        route(
            "model-version-file-list",
            "GET",
            read,
            published,
            lists=lambda s: version(s, visibility, "published").files.get().path,
            listed=listed,
        ),
        route("model-version-file-list", "POST", write, draft, iris_upload),
        route("model-version-file-detail", "GET", read, published_file),
        route("model-version-file-detail", "DELETE", write, draft_file),
        route("model-version-file-link", "GET", read, published_file),
        route("model-blob-download", "GET", read, blob_kwargs(visibility)),
        # resumable uploads: the members who may change the model
        route(
            "model-version-upload-list",
            "GET",
            members_read,
            draft,
            lists=lambda s: str(upload_session(s, visibility, "open").uuid),
            listed=for_model(LISTED_TO_CHANGERS, visibility),
        ),
        route("model-version-upload-list", "POST", write, draft, iris_declared),
        route("model-upload-detail", "GET", draft_read, upload_kwargs(visibility, "open")),
        route(
            "model-upload-detail",
            "PATCH",
            draft_write,
            upload_kwargs(visibility, "open"),
            lambda s, p: CHUNK,
            query={"offset": "0"},
            audited=False,
            note="a chunk writes no audit event: the session's start, completion and abort do",
        ),
        route("model-upload-detail", "DELETE", draft_write, upload_kwargs(visibility, "open")),
        route("model-upload-complete", "POST", draft_write, upload_kwargs(visibility, "full")),
        # aliases
        route(
            "model-alias-list",
            "GET",
            read,
            the_model,
            lists=lambda s: version(s, visibility, "aliased") and "production",
            listed=listed,
        ),
        route(
            "model-alias-list",
            "PUT",
            write,
            the_model,
            lambda s, p: {"name": "production", "version": version(s, visibility, "published").label},
        ),
        route("model-alias-detail", "GET", read, alias_kwargs(visibility)),
        route("model-alias-file-detail", "GET", read, alias_kwargs(visibility, path="model.onnx")),
        # grants: those who may change the model read them; its admins and owners grant and revoke
        route(
            "model-grant-list",
            "GET",
            members_read,
            the_model,
            lists=lambda s: granted(s, visibility) and "acme/core",
            listed=for_model(LISTED_TO_CHANGERS, visibility),
        ),
        route("model-grant-list", "POST", delete, the_model, grant_to_team("run")),
        route("model-grant-detail", "DELETE", delete, grant_kwargs(visibility)),
    ]


def granted(scene: Scene, visibility: str):
    """A grant of run on the model to acme's team ``core``, made by acme's owner."""
    from apps.organizations.grants import grant_access

    return scene.once(
        f"api-model-grant-{visibility}",
        lambda s: grant_access(
            obj=model(s, visibility), actor=s.owner, grantee_type="team", grantee=s.team.slug, permission="run"
        ),
    )


def grant_to_team(permission: str):
    def body(scene: Scene, persona: str) -> dict:
        return {"grantee_type": "team", "grantee": scene.team.slug, "permission": permission}

    return body


def grant_kwargs(visibility: str):
    def kwargs(scene: Scene, persona: str) -> dict:
        made = model(scene, visibility)
        granted(scene, visibility)
        return {
            "owner": made.organization.slug,
            "name": made.name,
            "grantee_type": "team",
            "grantee": f"{scene.org.slug}/{scene.team.slug}",
            "permission": "run",
        }

    return kwargs


# --- routes of the organization (under /orgs/{org_slug}/: acme's own visibility decides) ---------------------------
ORG_ROUTES: list[Route] = [
    Route(
        "api:model-org-list",
        "GET",
        ORG_READ,
        acme,
        query={"model": PRIVATE},
        lists=lambda s: model(s, PRIVATE).name,
        listed=Access(private=LISTED_MODEL.private, public=LISTED_MODEL.private),
        note="a private model of a public acme is listed to its members only",
    ),
    Route(
        "api:model-org-list",
        "GET",
        ORG_READ,
        acme,
        query={"model": PUBLIC},
        lists=lambda s: model(s, PUBLIC).name,
        listed=LISTED_MODEL,
        note="a public model of a private acme: the list is acme's (404 outside it); of a public acme, anyone's",
    ),
    Route(
        "api:model-org-list", "POST", MEMBER_WRITE, acme, lambda s, p: {"name": "new-model", "visibility": "private"}
    ),
    Route(
        "api:model-org-list",
        "GET",
        ORG_READ,
        acme,
        query={"deleted": "true"},
        lists=lambda s: deleted_model(s, PUBLIC).name,
        listed=LISTED_TO_ADMINS,
        note="deleted models exist only for those who may restore them: a deleted public model is listed to admins",
    ),
    Route("api:model-org-storage", "GET", ORG_MEMBERS_READ, acme),
]

# Rules of the catalog about what a list leaves out (docs/api/models.md), checked on a public model, whose lists
# everyone may read: a deleted model disappears everywhere; a yanked version is left out of version lists, except
# for those who may change the model.
LEFT_OUT: list[Route] = [
    Route(
        "api:model-list",
        "GET",
        PUBLIC_LISTING,
        no_kwargs,
        query={"model": "deleted"},
        under_org=False,
        lists=lambda s: deleted_model(s, PUBLIC).name,
        listed=Access(private=table(*[False] * 6), public=table(*[False] * 6)),
    ),
    Route(
        "api:model-version-list",
        "GET",
        for_model(ORG_READ, PUBLIC),
        model_kwargs(PUBLIC),
        query={"model": PUBLIC, "version": "yanked"},
        under_org=False,
        of_acme=True,
        lists=lambda s: version(s, PUBLIC, "yanked").label,
        listed=for_model(LISTED_TO_CHANGERS, PUBLIC),
    ),
]

API_ROUTES: list[Route] = [*ORG_ROUTES, *model_routes(PRIVATE), *model_routes(PUBLIC), *LEFT_OUT]
