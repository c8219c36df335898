"""The registry pages in the page permission matrix: organization admins only (members and viewers 403)."""

from __future__ import annotations

from tests.permissions.matrix import DONE, LOGIN, PAGE_ADMIN, Access, Route, Scene, table

# The Access panel's forms: the registry's admins and owners; to anyone else the registry is not there (404).
REGISTRY_SHARING = Access(
    private=table(DONE, DONE, 404, 404, 404, LOGIN), public=table(DONE, DONE, 404, 404, 404, LOGIN)
)
TEAM_VIEW = {"grantee_type": "team", "grantee": "core", "permission": "view"}


def of_granted_registry(scene: Scene, persona: str) -> dict:
    from tests.registries.permission_matrix import registry_grant

    registry_grant(scene)
    return of_registry(scene, persona)


def _registry(scene: Scene):
    from tests.registries.permission_matrix import registry

    return registry(scene)


def of_registry(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "registry_slug": _registry(scene).slug}


def of_sync(scene: Scene, persona: str) -> dict:
    from tests.registries.permission_matrix import sync

    return {**of_registry(scene, persona), "sync_id": sync(scene).pk}


def registry_form(scene: Scene, persona: str) -> dict:
    return {
        "name": "Examples",
        "description": "",
        "mode": "metadata",
        "model_visibility": "private",
        "sync_interval_minutes": 0,
        "enabled": "on",
        "config__page_size": 3,
    }


PAGE_ROUTES = [
    Route("org-registries", "GET", PAGE_ADMIN),
    Route("org-registry-create", "GET", PAGE_ADMIN),
    Route(
        "org-registry-create",
        "POST",
        PAGE_ADMIN,
        body=lambda s, p: {**registry_form(s, p), "backend": "example-catalog", "slug": f"new-{p}"},
    ),
    Route("org-registry", "GET", PAGE_ADMIN, of_registry),
    Route("org-registry-edit", "GET", PAGE_ADMIN, of_registry),
    Route("org-registry-edit", "POST", PAGE_ADMIN, of_registry, registry_form),
    Route("org-registry-sync", "POST", PAGE_ADMIN, of_registry),
    Route(
        "org-registry-check",
        "POST",
        PAGE_ADMIN,
        of_registry,
        note="a connection test uses the stored credentials: registry.connection_checked is recorded",
    ),
    Route("org-registry-delete", "POST", PAGE_ADMIN, of_registry, lambda s, p: {"confirm_slug": "examples"}),
    Route("org-registry-access", "POST", REGISTRY_SHARING, of_registry, lambda s, p: s.team and TEAM_VIEW),
    Route("org-registry-access-revoke", "POST", REGISTRY_SHARING, of_granted_registry, lambda s, p: TEAM_VIEW),
    Route("org-registry-sync-detail", "GET", PAGE_ADMIN, of_sync),
    Route("org-registry-sync-live", "GET", PAGE_ADMIN, of_sync),
]
