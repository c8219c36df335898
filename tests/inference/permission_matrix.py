"""Inference's entries in the permission matrix (loaded by tests/permissions/matrix.py).

Each part of inference keeps its routes in its own module, all joined here: ``matrix_api.py`` (predictions,
deployments, webhook secret), and any other ``tests/inference/matrix_*.py`` (KServe v2, batch jobs, pipelines,
performance cards) defining ``API_ROUTES`` / ``PAGE_ROUTES`` / ``EXEMPT``; ``page_permission_matrix.py`` holds the
pages' ``PAGE_ROUTES``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

API_ROUTES: list = []
PAGE_ROUTES: list = []
EXEMPT: dict = {}

_here = Path(__file__).resolve().parent
for _path in sorted(_here.glob("matrix_*.py")) + sorted(_here.glob("page_permission_matrix.py")):
    _module = importlib.import_module(f"tests.inference.{_path.stem}")
    API_ROUTES.extend(getattr(_module, "API_ROUTES", []))
    PAGE_ROUTES.extend(getattr(_module, "PAGE_ROUTES", []))
    EXEMPT.update(getattr(_module, "EXEMPT", {}))

__all__ = ["API_ROUTES", "EXEMPT", "PAGE_ROUTES"]
