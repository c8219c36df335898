"""The session cache counts what a session's runs keep (ONNX Runtime's arena holds what a run allocated) in its
cost: other sessions make room first, and a session that its runs pushed past the whole budget is dropped; one
whose load alone is past the budget stays, as when it was loaded."""

from __future__ import annotations

from apps.inference.runtime.sessions import SessionCache

MIB = 1024 * 1024


class Loaded:
    """Stands in for an InferenceSession: the cache only asks it for its providers."""

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]


def cache_with(*sizes_mb: int, budget_mb: int = 100) -> SessionCache:
    cache = SessionCache(budget_mb * MIB)
    for number, size in enumerate(sizes_mb):
        cache.get(f"model-{number}", lambda: (Loaded(), {}), size_hint=size * MIB)
    return cache


def test_what_a_run_keeps_is_part_of_the_sessions_cost():
    cache = cache_with(10)
    cost = cache.used_bytes

    assert cache.count_run("model-0", 20 * MIB) is False

    assert cache.used_bytes == cost + 20 * MIB
    assert "model-0" in cache


def test_older_sessions_make_room_for_what_a_run_kept():
    cache = cache_with(40, 40)

    dropped = cache.count_run("model-1", 30 * MIB)

    assert dropped is False
    assert cache.keys() == ["model-1"]
    assert cache.evictions == 1


def test_a_session_that_its_runs_push_past_the_budget_is_dropped():
    cache = cache_with(10, budget_mb=100)

    assert cache.count_run("model-0", 1500 * MIB) is True

    assert "model-0" not in cache
    assert cache.used_bytes == 0


def test_a_session_larger_than_the_budget_by_its_load_alone_stays():
    cache = cache_with(150, budget_mb=100)

    assert cache.count_run("model-0", 5 * MIB) is False

    assert "model-0" in cache


def test_a_run_that_kept_nothing_changes_nothing():
    cache = cache_with(10)
    cost = cache.used_bytes

    assert cache.count_run("model-0", -3 * MIB) is False
    assert cache.count_run("unknown", 50 * MIB) is False

    assert cache.used_bytes == cost
