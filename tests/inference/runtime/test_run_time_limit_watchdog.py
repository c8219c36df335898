"""The watchdog that stops ONNX Runtime runs past their time limit (apps/inference/runtime/sessions.py): one thread
per process, not a thread per run; a run past its limit is terminated, one that ended is not, the earliest
deadline is kept whatever the order runs register in, and ended runs do not pile up."""

from __future__ import annotations

import threading
import time

from apps.inference.runtime import sessions


class Options:
    terminate = False


def wait_until(predicate, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def test_a_run_past_its_limit_is_terminated_and_one_that_ended_is_not():
    watchdog = sessions.Watchdog()
    late, done = Options(), Options()
    watchdog.watch(0.05, late)
    watchdog.forget(watchdog.watch(0.05, done))
    assert wait_until(lambda: late.terminate)
    time.sleep(0.1)
    assert not done.terminate


def test_the_earliest_deadline_wakes_it_whatever_the_order():
    watchdog = sessions.Watchdog()
    slow, fast = Options(), Options()
    watchdog.watch(30, slow)
    started = time.monotonic()
    watchdog.watch(0.05, fast)
    assert wait_until(lambda: fast.terminate)
    assert time.monotonic() - started < 5 and not slow.terminate


def test_ended_runs_do_not_pile_up():
    watchdog = sessions.Watchdog()
    for _ in range(1000):
        watchdog.forget(watchdog.watch(60, Options()))
    assert len(watchdog._heap) <= 64 + 1 and not watchdog._live


def test_one_watchdog_per_process_and_no_thread_per_run():
    sessions._watchdog()
    before = threading.active_count()
    for _ in range(50):
        sessions._watchdog().forget(sessions._watchdog().watch(10, Options()))
    assert threading.active_count() == before
    assert sessions._watchdog() is sessions._watchdog()
