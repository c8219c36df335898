"""When a short-lived decision (apps/core/shortlived.py: a token checked, a right to run a deployment) is missing,
one thread of the process computes it and the others asking for it meanwhile wait for that outcome: an entry
expiring under load cost one query per waiting request before. A computation that fails, or that a change
overtook, keeps nothing, and each waiter computes its own."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.core import shortlived

THREADS = 8


@pytest.fixture
def cache(settings):
    settings.SHORT_LIVED_CACHE_SECONDS = 30
    made = shortlived.ShortLivedCache("test-single-flight")
    yield made
    shortlived._caches.remove(made)


def ask_at_once(cache, compute, key="k"):
    """``THREADS`` threads ask for ``key`` together; what each got back (a value or the exception it raised)."""
    start = threading.Barrier(THREADS)

    def ask():
        start.wait()
        try:
            return cache.get_or_compute(key, compute)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(THREADS) as pool:
        return [future.result(10) for future in [pool.submit(ask) for _ in range(THREADS)]]


def slow_counter(result=None, error=None, seconds=0.2):
    calls = []
    lock = threading.Lock()

    def compute():
        with lock:
            calls.append(1)
        time.sleep(seconds)
        if error is not None:
            raise error
        return result if result is not None else object()

    return compute, calls


def test_threads_asking_together_compute_once_and_share_the_value(cache, monkeypatch):
    monkeypatch.setattr(shortlived, "ensure_listener", lambda: None)  # no Redis listener needed for this
    value = object()
    compute, calls = slow_counter(result=value)

    answers = ask_at_once(cache, compute)

    assert len(calls) == 1
    assert all(answer is value for answer in answers)
    assert cache.get("k") is value  # kept for the next asks


def test_a_kept_value_is_not_computed_again(cache, monkeypatch):
    monkeypatch.setattr(shortlived, "ensure_listener", lambda: None)
    compute, calls = slow_counter(result="decided", seconds=0)
    assert cache.get_or_compute("k", compute) == "decided"
    assert cache.get_or_compute("k", compute) == "decided"
    assert len(calls) == 1


def test_a_failed_computation_keeps_nothing_and_each_waiter_computes_its_own(cache, monkeypatch):
    monkeypatch.setattr(shortlived, "ensure_listener", lambda: None)
    compute, calls = slow_counter(error=LookupError("refused"), seconds=0.05)

    answers = ask_at_once(cache, compute)

    assert all(isinstance(answer, LookupError) for answer in answers)  # each caller hears its own refusal
    assert len(calls) == THREADS
    assert cache.get("k") is shortlived.MISSING


def test_a_value_overtaken_by_a_change_is_not_kept_and_waiters_compute_again(cache, monkeypatch):
    monkeypatch.setattr(shortlived, "ensure_listener", lambda: None)
    calls = []
    lock = threading.Lock()

    def compute():
        with lock:
            calls.append(1)
            first = len(calls) == 1
        time.sleep(0.2)
        if first:
            shortlived.clear_local()  # a change lands while the first computation runs
        return len(calls)

    answers = ask_at_once(cache, compute)

    assert len(calls) > 1  # the first outcome was not kept: the waiters did not take it from the cache
    assert answers.count(1) == 1  # only the thread that computed it answered with the overtaken value


def test_different_keys_do_not_wait_for_each_other(cache, monkeypatch):
    monkeypatch.setattr(shortlived, "ensure_listener", lambda: None)
    started = threading.Event()
    release = threading.Event()

    def blocked():
        started.set()
        release.wait(5)
        return "slow"

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(cache.get_or_compute, "a", blocked)
        assert started.wait(5)
        assert cache.get_or_compute("b", lambda: "quick") == "quick"  # not held behind "a"
        release.set()
        assert slow.result(5) == "slow"
