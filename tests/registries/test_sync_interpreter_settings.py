"""While a sync writes pages the cyclic garbage collector runs every few pages (the sync's thresholds), not every
700 allocations, and the GIL changes hands within a tenth of a millisecond, so the writing thread is not kept
waiting by the listing thread after each statement (benchmarks/RESULTS.md). The process's own settings are back
afterwards, whether the sync succeeded or a plugin blew up."""

from __future__ import annotations

import gc
import sys

import pytest

from apps.core.jobs import JobStatus
from apps.registries.interpreter import SYNC_GC_THRESHOLDS, SYNC_SWITCH_INTERVAL, sync_interpreter_settings
from tests.registries.support import ScriptedBackend, make_registry, run_sync, scripted_model

pytestmark = pytest.mark.django_db

PROCESS_THRESHOLDS = (700, 10, 10)
PROCESS_SWITCH_INTERVAL = 0.005


@pytest.fixture(autouse=True)
def process_settings():
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(*PROCESS_THRESHOLDS)
    sys.setswitchinterval(PROCESS_SWITCH_INTERVAL)
    yield
    gc.set_threshold(*thresholds)
    sys.setswitchinterval(interval)


def test_a_sync_pages_under_the_sync_settings_and_puts_the_process_settings_back(world, monkeypatch):
    ScriptedBackend.CATALOGS["gc"] = [scripted_model(f"team/model-{n}") for n in range(5)]
    seen = []
    serve = ScriptedBackend.iter_models

    def recording(self, cursor=None):
        for page in serve(self, cursor):
            # In the sync's read-ahead thread: both settings are the process's, so the thread sees the sync's.
            seen.append((gc.get_threshold(), sys.getswitchinterval()))
            yield page

    monkeypatch.setattr(ScriptedBackend, "iter_models", recording)
    registry = make_registry(world.org, world.user("owner"), config={"catalog": "gc", "page_size": 2})

    sync = run_sync(registry, world.user("admin"))

    assert sync.job.status == JobStatus.SUCCEEDED, sync.job.error
    assert sync.created == 5
    assert seen
    assert {thresholds for thresholds, _ in seen} == {SYNC_GC_THRESHOLDS}
    assert [interval for _, interval in seen] == pytest.approx([SYNC_SWITCH_INTERVAL] * len(seen))
    assert gc.get_threshold() == PROCESS_THRESHOLDS
    assert sys.getswitchinterval() == pytest.approx(PROCESS_SWITCH_INTERVAL)


def test_a_plugin_that_raises_mid_sync_leaves_the_process_settings_as_they_were(world):
    registry = make_registry(
        world.org, world.user("owner"), backend="test-exploding", slug="exploding", config={"raise": "value"}
    )

    sync = run_sync(registry, world.user("admin"))

    assert sync.job.status == JobStatus.FAILED
    assert gc.get_threshold() == PROCESS_THRESHOLDS
    assert sys.getswitchinterval() == pytest.approx(PROCESS_SWITCH_INTERVAL)


def test_the_block_restores_the_settings_when_its_body_raises():
    with pytest.raises(RuntimeError), sync_interpreter_settings():
        assert gc.get_threshold() == SYNC_GC_THRESHOLDS
        assert sys.getswitchinterval() == pytest.approx(SYNC_SWITCH_INTERVAL)
        raise RuntimeError("a page failed")
    assert gc.get_threshold() == PROCESS_THRESHOLDS
    assert sys.getswitchinterval() == pytest.approx(PROCESS_SWITCH_INTERVAL)
