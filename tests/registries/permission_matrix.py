"""The registries' entries in the permission matrix (loaded by tests/permissions/matrix.py).

A registry's configuration is its organization's admins' business (it can hold internal URLs): members and
viewers get 403, outsiders of a private organization 404. The catalog export is read like the catalog: each
caller gets what they may view.
"""

from __future__ import annotations

from apps.registries import services
from apps.registries.models import RegistrySync
from tests.permissions.matrix import (
    ADMIN_READ,
    ADMIN_WRITE,
    HIDDEN_FROM_ANONYMOUS,
    LISTED_TO_ADMINS,
    OK,
    ORG_READ,
    SIGNED_IN_SELF,
    Access,
    Route,
    Scene,
    no_kwargs,
    table,
)
from tests.registries.page_permission_matrix import PAGE_ROUTES


def registry(scene: Scene):
    return scene.once(
        "registry",
        lambda s: services.create_registry(
            organization=s.org,
            actor=s.owner,
            backend="example-catalog",
            slug="examples",
            name="Examples",
            config={"page_size": 2},
        ),
    )


def sync(scene: Scene) -> RegistrySync:
    return scene.once("registry-sync", lambda s: services.start_sync(registry=registry(s), actor=s.owner))


def of_registry(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "registry_slug": registry(scene).slug}


def of_sync(scene: Scene, persona: str) -> dict:
    return {**of_registry(scene, persona), "sync_id": sync(scene).pk}


def registry_grant(scene: Scene):
    """A grant of view on the registry to acme's team ``core``, made by acme's owner."""
    from apps.organizations.grants import grant_access

    return scene.once(
        "registry-grant",
        lambda s: grant_access(
            obj=registry(s), actor=s.owner, grantee_type="team", grantee=s.team.slug, permission="view"
        ),
    )


def of_registry_grant(scene: Scene, persona: str) -> dict:
    registry_grant(scene)
    grantee = {"grantee_type": "team", "grantee": f"{scene.org.slug}/{scene.team.slug}", "permission": "view"}
    return {**of_registry(scene, persona), **grantee}


# A registry's grants: its admins and owners read and manage them; to anyone else the registry is not there (404),
# in a public organization too (a registry is never visible beyond its admins and grantees).
#                                   owner admin member viewer outsider anonymous
REGISTRY_GRANTS_READ = Access(
    private=table(OK, OK, 404, 404, 404, HIDDEN_FROM_ANONYMOUS),
    public=table(OK, OK, 404, 404, 404, HIDDEN_FROM_ANONYMOUS),
)
REGISTRY_GRANTS_WRITE = Access(private=table(OK, OK, 404, 404, 404, 401), public=table(OK, OK, 404, 404, 404, 401))


def new_registry(scene: Scene, persona: str) -> dict:
    return {"slug": f"new-{persona}", "name": "New", "backend": "example-catalog", "config": {"page_size": 3}}


API_ROUTES = [
    Route("api:registry-backend-list", "GET", SIGNED_IN_SELF, no_kwargs, under_org=False),
    Route("api:org-registry-list", "GET", ADMIN_READ, lists=lambda s: registry(s).slug, listed=LISTED_TO_ADMINS),
    Route("api:org-registry-list", "POST", ADMIN_WRITE, body=new_registry),
    Route("api:org-registry-detail", "GET", ADMIN_READ, of_registry),
    Route(
        "api:org-registry-grant-list",
        "GET",
        REGISTRY_GRANTS_READ,
        of_registry,
        lists=lambda s: registry_grant(s) and "acme/core",
        listed=LISTED_TO_ADMINS,
    ),
    Route(
        "api:org-registry-grant-list",
        "POST",
        REGISTRY_GRANTS_WRITE,
        of_registry,
        lambda s, p: {"grantee_type": "team", "grantee": s.team.slug, "permission": "view"},
    ),
    Route("api:org-registry-grant-detail", "DELETE", REGISTRY_GRANTS_WRITE, of_registry_grant),
    Route("api:org-registry-detail", "PATCH", ADMIN_WRITE, of_registry, lambda s, p: {"name": "Renamed"}),
    Route("api:org-registry-detail", "DELETE", ADMIN_WRITE, of_registry),
    Route(
        "api:org-registry-check",
        "POST",
        ADMIN_WRITE,
        of_registry,
        note="a connection test uses the stored credentials: registry.connection_checked is recorded",
    ),
    Route("api:org-registry-sync-list", "GET", ADMIN_READ, of_registry),
    Route(
        "api:org-registry-sync-list",
        "POST",
        ADMIN_WRITE,
        of_registry,
        note="starting a sync writes the job's job.created event; the run writes registry.synced",
    ),
    Route("api:org-registry-sync-detail", "GET", ADMIN_READ, of_sync),
    Route("api:org-registry-index", "GET", ORG_READ),
]

__all__ = ["API_ROUTES", "PAGE_ROUTES"]
