"""The catalog's entries in the permission matrix (loaded by tests/permissions/matrix.py).

PAGE_ROUTES: the catalog pages (tests/marketplace/page_permission_matrix.py). API_ROUTES: the catalog API, every
route of apps/marketplace/api/urls.py for a private and a public model (tests/marketplace/matrix_api.py), and its
gpux.yml routes (tests/marketplace/matrix_manifest.py).
"""

from __future__ import annotations

from tests.marketplace.matrix_api import API_ROUTES as CATALOG_API_ROUTES
from tests.marketplace.matrix_manifest import MANIFEST_ROUTES
from tests.marketplace.page_permission_matrix import PAGE_ROUTES

API_ROUTES = [*CATALOG_API_ROUTES, *MANIFEST_ROUTES]

__all__ = ["API_ROUTES", "PAGE_ROUTES"]
