"""The analytics routes in the permission matrix.

The operations dashboard is for staff, whom no persona is (each of them answers 404, as if the page did not exist;
tests/analytics/test_dashboards.py signs in a staff user). An organization's monitoring page shows all its jobs,
so it is for those who see all of them: its admins. Usage analytics (the organization's, one of its models', one of
its bound tokens'), their exports and the quotas are the organization's admins' too, pages and API alike: an admin
of another organization (the outsider persona belongs elsewhere) sees nothing of acme's.
"""

from __future__ import annotations

from tests.marketplace.matrix_api import model as catalog_model
from tests.permissions.matrix import ADMIN_READ, LOGIN, PAGE_ADMIN, Access, Route, Scene, bound_token, no_kwargs, table

PAGE_STAFF_ONLY = Access(
    private=table(404, 404, 404, 404, 404, LOGIN),
    public=table(404, 404, 404, 404, 404, LOGIN),
)


def acme_model(scene: Scene, persona: str) -> dict:
    return {"org_slug": scene.org.slug, "name": catalog_model(scene, "private").name}


PAGE_ROUTES = [
    Route("operations", "GET", PAGE_STAFF_ONLY, no_kwargs, under_org=False),
    Route("operations-live", "GET", PAGE_STAFF_ONLY, no_kwargs, under_org=False),
    Route("org-monitoring", "GET", PAGE_ADMIN),
    Route("org-monitoring-live", "GET", PAGE_ADMIN),
    Route("org-analytics", "GET", PAGE_ADMIN),
    Route("org-analytics", "GET", PAGE_ADMIN, query={"period": "90d", "token_kind": "ci"}),
    Route("org-analytics-export", "GET", PAGE_ADMIN, query={"format": "csv"}),
    Route("org-analytics-export", "GET", PAGE_ADMIN, query={"format": "json"}),
    Route("org-analytics-model", "GET", PAGE_ADMIN, acme_model),
    Route("org-analytics-model-export", "GET", PAGE_ADMIN, acme_model, query={"format": "csv"}),
    Route("org-analytics-token", "GET", PAGE_ADMIN, bound_token),
    Route("org-analytics-token-export", "GET", PAGE_ADMIN, bound_token, query={"format": "json"}),
    Route("org-quotas-page", "GET", PAGE_ADMIN),
]

API_ROUTES = [
    Route("api:org-usage", "GET", ADMIN_READ),
    Route("api:org-usage", "GET", ADMIN_READ, query={"period": "7d", "format": "csv"}),
    Route("api:org-usage-model", "GET", ADMIN_READ, acme_model),
    Route("api:org-usage-token", "GET", ADMIN_READ, bound_token),
    Route("api:org-quotas", "GET", ADMIN_READ),
]
