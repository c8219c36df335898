"""Imported by the registry tests' worker subprocesses (CELERY_EXTRA_TASK_MODULES): registers the test plugins
there too, so a real worker runs the deliberately broken backend exactly as it would run a broken install."""

from __future__ import annotations

from apps.registries.sdk.discovery import register_backend
from tests.registries.support import ExplodingBackend, ScriptedBackend

register_backend(ExplodingBackend.name, ExplodingBackend)
register_backend(ScriptedBackend.name, ScriptedBackend)
