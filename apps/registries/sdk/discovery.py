"""Finding backends: every entry point of the group ``gpux_portal.registries``, built-ins included."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points

from apps.registries.sdk.backend import RegistryBackend

ENTRY_POINT_GROUP = "gpux_portal.registries"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that could not be loaded: shown to operators, never fatal."""

    name: str
    target: str
    error: str


@functools.cache
def _load() -> tuple[dict[str, type[RegistryBackend]], tuple[BrokenPlugin, ...]]:
    found: dict[str, type[RegistryBackend]] = {}
    broken: list[BrokenPlugin] = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            backend = entry.load()
            if not (isinstance(backend, type) and issubclass(backend, RegistryBackend)):
                raise TypeError(f"{entry.value} is not a RegistryBackend subclass")
        except Exception as exc:  # a broken plugin must not take the portal down
            logger.warning("Registry backend %s (%s) could not be loaded: %s", entry.name, entry.value, exc)
            broken.append(BrokenPlugin(entry.name, entry.value, f"{type(exc).__name__}: {exc}"))
            continue
        if entry.name in found:
            broken.append(BrokenPlugin(entry.name, entry.value, "another backend already has this name"))
            continue
        found[entry.name] = backend
    return dict(sorted(found.items())), tuple(broken)


# Backends registered in code rather than through an entry point (the test suite's deliberately broken ones).
_registered: dict[str, type[RegistryBackend]] = {}


def register_backend(name: str, backend: type[RegistryBackend]) -> None:
    """Make ``backend`` available as ``name`` in this process, beside the entry points (tests use this)."""
    _registered[name] = backend


def unregister_backend(name: str) -> None:
    _registered.pop(name, None)


def available_backends() -> dict[str, type[RegistryBackend]]:
    """Backends by entry-point name, sorted."""
    return dict(sorted({**_load()[0], **_registered}.items()))


def broken_plugins() -> tuple[BrokenPlugin, ...]:
    return _load()[1]


def backend_class(name: str) -> type[RegistryBackend] | None:
    return _registered.get(name) or _load()[0].get(name)


def reload_backends() -> None:
    """Forget what was found (tests that install a plugin, a worker after an upgrade)."""
    _load.cache_clear()
