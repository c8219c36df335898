from __future__ import annotations

import pytest

from apps.registries.sdk.discovery import register_backend, unregister_backend
from tests.peers.faulty_registry import faulty_registry  # noqa: F401 (a fixture for the sync fault tests)
from tests.registries.support import ExplodingBackend, ScriptedBackend


@pytest.fixture(autouse=True)
def test_backends(settings):
    """The test plugins, registered for each test; fast retries so fault tests take milliseconds."""
    settings.REGISTRY_RETRY_BACKOFF_SECONDS = 0.01
    settings.REGISTRY_RETRY_ATTEMPTS = 3
    settings.REGISTRY_RETRY_MAX_WAIT_SECONDS = 2
    register_backend(ScriptedBackend.name, ScriptedBackend)
    register_backend(ExplodingBackend.name, ExplodingBackend)
    ScriptedBackend.CATALOGS.clear()
    ScriptedBackend.FAULTS.clear()
    ScriptedBackend.CALLS.clear()
    yield
    unregister_backend(ScriptedBackend.name)
    unregister_backend(ExplodingBackend.name)
