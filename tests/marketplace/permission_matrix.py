"""The catalog's entries in the permission matrix (loaded by tests/permissions/matrix.py).

PAGE_ROUTES: the catalog pages (tests/marketplace/page_permission_matrix.py). API_ROUTES: the catalog API.
"""

from __future__ import annotations

from tests.marketplace.page_permission_matrix import PAGE_ROUTES

API_ROUTES: list = []

__all__ = ["API_ROUTES", "PAGE_ROUTES"]
