"""An example GPUX Portal registry plugin: a small catalog defined in code (see README.md)."""

from __future__ import annotations

from gpux_registry_example.backend import ExampleCatalogBackend

__all__ = ["ExampleCatalogBackend"]
