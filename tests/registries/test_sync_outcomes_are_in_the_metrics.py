"""Each sync that ends is counted by backend and outcome, and the models it wrote by change (created, updated,
failed), on /metrics: what the RegistrySyncFailing alert and the dashboards read."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.metrics_support import scrape_web
from tests.registries.support import ScriptedBackend, make_registry, run_sync, scripted_model

pytestmark = pytest.mark.django_db

SYNCS = "gpux_registry_syncs_total"
MODELS = "gpux_registry_sync_models_total"


def test_a_sync_counts_its_outcome_and_the_models_it_wrote(world, django_capture_on_commit_callbacks):
    ScriptedBackend.CATALOGS["scripted"] = [scripted_model(f"team/model-{n}") for n in range(3)]
    registry = make_registry(world.org, world.user("owner"))
    before = scrape_web(Client())
    with django_capture_on_commit_callbacks(execute=True):
        run_sync(registry, world.user("admin"))
    ScriptedBackend.CATALOGS["scripted"][0] = scripted_model("team/model-0", summary="Retrained.")
    with django_capture_on_commit_callbacks(execute=True):
        run_sync(registry, world.user("admin"))
    after = scrape_web(Client())

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew(SYNCS, backend="test-scripted", outcome="succeeded") == 2
    assert grew(SYNCS, backend="test-scripted", outcome="failed") == 0
    assert grew(MODELS, backend="test-scripted", change="created") == 3
    assert grew(MODELS, backend="test-scripted", change="updated") == 1


def test_a_failed_sync_is_counted_as_failed(world, django_capture_on_commit_callbacks):
    registry = make_registry(
        world.org, world.user("owner"), backend="test-exploding", slug="exploding", config={"raise": "value"}
    )
    before = scrape_web(Client())
    with django_capture_on_commit_callbacks(execute=True):
        sync = run_sync(registry, world.user("admin"))
    assert sync.job.status == "failed"
    after = scrape_web(Client())
    failed = after.value(SYNCS, backend="test-exploding", outcome="failed")
    assert failed - before.value(SYNCS, backend="test-exploding", outcome="failed") == 1
