"""The monitoring pages in the permission matrix: the operations dashboard is for staff, whom no persona is (each of
them answers 404, as if the page did not exist; tests/analytics/test_dashboards.py signs in a staff user); an
organization's monitoring page shows all its jobs, so it is for those who see all of them: its admins."""

from __future__ import annotations

from tests.permissions.matrix import LOGIN, PAGE_ADMIN, Access, Route, no_kwargs, table

PAGE_STAFF_ONLY = Access(
    private=table(404, 404, 404, 404, 404, LOGIN),
    public=table(404, 404, 404, 404, 404, LOGIN),
)

PAGE_ROUTES = [
    Route("operations", "GET", PAGE_STAFF_ONLY, no_kwargs, under_org=False),
    Route("operations-live", "GET", PAGE_STAFF_ONLY, no_kwargs, under_org=False),
    Route("org-monitoring", "GET", PAGE_ADMIN),
    Route("org-monitoring-live", "GET", PAGE_ADMIN),
]
