"""ONNX Runtime sessions: creating one with the worker's thread and optimization settings, a per-process cache
bounded by a memory budget (least recently used out first), and running one under a time limit and an output cap.

The memory a session takes is measured, not guessed: the resident set grows while it loads (weights, arenas,
the optimized graph), and that growth, or the model file's size when it is larger, is what it costs the budget.
Its runs count too: ONNX Runtime's arena keeps what a run allocated (a run that expanded a tensor to 10 GB keeps
10 GB), so what the resident set grew by during a run is added to the session's cost (``count_run``), and a
session that its runs pushed past the whole budget is dropped after the run, giving the memory back.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from apps.core import metrics
from apps.inference.runtime.providers import CPU, GPU_PROVIDERS

GRAPH_OPTIMIZATION = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class RunTimeLimitExceeded(RuntimeError):
    """A run was stopped at its time limit (ONNX Runtime's terminate flag)."""


class OutputTooLarge(RuntimeError):
    """A run returned more bytes than the cap allows."""


class ModelLoadError(RuntimeError):
    """ONNX Runtime refused to create a session for the model; the message says why."""


_statm: tuple[int, int] | None = None  # (pid, descriptor of its /proc/self/statm)
_statm_lock = threading.Lock()


def _forget_statm() -> None:
    """In a forked child: the descriptor names the parent (``/proc/self`` is resolved when it is opened)."""
    global _statm, _statm_lock
    if _statm is not None:
        with contextlib.suppress(OSError):
            os.close(_statm[1])
    _statm, _statm_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_statm)


def resident_bytes() -> int:
    """This process's resident set size, from /proc (0 where there is no /proc).

    Read with one ``pread`` on a descriptor the process keeps open: every run reads it twice (``run_version``), and
    opening the file each time cost 45 µs a read on the 2-core test machine, against 3 µs."""
    global _statm
    try:
        kept = _statm
        if kept is None or kept[0] != os.getpid():
            with _statm_lock:
                kept = _statm
                if kept is None or kept[0] != os.getpid():
                    kept = _statm = (os.getpid(), os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC))
        return int(os.pread(kept[1], 128, 0).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def default_threads() -> int:
    """ONNX Runtime's intra-op threads: ``GPUX_INFERENCE_THREADS``, else the cores divided among the worker
    processes of this host (``GPUX_INFERENCE_PROCESSES``, 1): two processes with two threads each on two cores
    oversubscribe them (DESIGN.md, measured floors)."""
    configured = os.environ.get("GPUX_INFERENCE_THREADS")
    if configured:
        return max(1, int(configured))
    processes = max(1, int(os.environ.get("GPUX_INFERENCE_PROCESSES", "1")))
    return max(1, (os.cpu_count() or 1) // processes)


def session_options(
    *, threads: int | None = None, optimization: str = "all", profiling: bool = False
) -> ort.SessionOptions:
    """Session options: intra-op threads, one inter-op thread, the graph optimization level, no spinning."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = GRAPH_OPTIMIZATION.get(optimization, GRAPH_OPTIMIZATION["all"])
    options.enable_profiling = profiling
    # Spinning threads burn the cores a Celery worker and PostgreSQL share with them between requests.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def load_session(
    path: str | Path, *, providers: list[Any], options: ort.SessionOptions | None = None
) -> ort.InferenceSession:
    """An InferenceSession for ``path``; ``ModelLoadError`` with ONNX Runtime's reason when it cannot load."""
    try:
        return ort.InferenceSession(str(path), sess_options=options or session_options(), providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/RuntimeException types
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"ONNX Runtime could not load the model: {message}") from exc


@dataclass
class CachedSession:
    """A loaded session with what it costs and what it runs on."""

    session: ort.InferenceSession
    cost_bytes: int
    provider: str
    load_ms: float
    extra: dict[str, Any] = field(default_factory=dict)
    last_used: float = field(default_factory=time.monotonic)
    run_bytes: int = 0  # what its runs kept (arena growth), part of ``cost_bytes``


class SessionCache:
    """Sessions of one worker process, keyed by (version, providers...), within ``budget_bytes`` in total.

    A new session that does not fit evicts the least recently used ones first; a session larger than the
    whole budget is still loaded (and is then alone in the cache), so one big model never fails for the cache's
    sake. Thread-safe: loads of the same key wait for one another.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = int(budget_bytes)
        self._entries: OrderedDict[Any, CachedSession] = OrderedDict()
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def used_bytes(self) -> int:
        return sum(entry.cost_bytes for entry in self._entries.values())

    def __contains__(self, key: Any) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[Any]:
        """Keys from least to most recently used."""
        return list(self._entries)

    def get(
        self, key: Any, loader: Callable[[], tuple[ort.InferenceSession, dict[str, Any]]], *, size_hint: int = 0
    ) -> CachedSession:
        """The cached session of ``key``, or one made by ``loader()`` (a session and extra data to keep)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.last_used = time.monotonic()
                self.hits += 1
                metrics.session_cache("hit")
                return entry
            self.misses += 1
            metrics.session_cache("miss")
            # Make room first for what the model file suggests, so that the load itself stays within budget.
            self._evict_for(size_hint)
            before, started = resident_bytes(), time.perf_counter()
            session, extra = loader()
            load_ms = (time.perf_counter() - started) * 1000
            cost = max(resident_bytes() - before, size_hint, 1)
            self._evict_for(cost)
            entry = CachedSession(session, cost, session.get_providers()[0], load_ms, extra)
            self._entries[key] = entry
            return entry

    def _evict_for(self, cost: int) -> None:
        while self._entries and self.used_bytes + cost > self.budget_bytes:
            self._entries.popitem(last=False)
            self.evictions += 1
            metrics.session_cache("eviction")

    def count_run(self, key: Any, grown_bytes: int) -> bool:
        """Count what a run of ``key``'s session kept (the resident set grew by ``grown_bytes``) in its cost.

        Other sessions make room first (least recently used out). A session that its runs pushed past the whole
        budget is dropped (True): its arena goes back to the system once the caller lets go of the session, and
        the next request loads it again. A session whose load alone is past the budget stays, as on loading.
        """
        if grown_bytes <= 0:
            return False
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            entry.run_bytes += grown_bytes
            entry.cost_bytes += grown_bytes
            if entry.cost_bytes > self.budget_bytes and entry.cost_bytes - entry.run_bytes <= self.budget_bytes:
                del self._entries[key]
                self.evictions += 1
                metrics.session_cache("eviction")
                return True
            while len(self._entries) > 1 and self.used_bytes > self.budget_bytes:
                oldest = next(iter(self._entries))
                if oldest == key:
                    break
                del self._entries[oldest]
                self.evictions += 1
                metrics.session_cache("eviction")
            return False

    def discard(self, key: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def run_session(
    session: ort.InferenceSession,
    inputs: dict[str, np.ndarray],
    *,
    output_names: list[str] | None = None,
    time_limit: float | None = None,
    max_output_bytes: int | None = None,
    io_binding: bool | None = None,
) -> dict[str, Any]:
    """Run ``session`` on ``inputs``; the outputs by name.

    A run past ``time_limit`` seconds is stopped through ONNX Runtime's terminate flag (a watchdog thread sets
    it) and raises ``RunTimeLimitExceeded``; outputs over ``max_output_bytes`` raise ``OutputTooLarge``. IO
    binding is used on GPU providers (``io_binding=None``) so inputs are copied to the device once.
    """
    names = output_names or [output.name for output in session.get_outputs()]
    run_options = ort.RunOptions()
    run_options.log_severity_level = 3
    timer = _watchdog().watch(time_limit, run_options) if time_limit else None
    use_binding = session.get_providers()[0] in GPU_PROVIDERS if io_binding is None else io_binding
    try:
        if use_binding:
            binding = session.io_binding()
            for name, array in inputs.items():
                binding.bind_cpu_input(name, array)
            for name in names:
                binding.bind_output(name)
            session.run_with_iobinding(binding, run_options)
            values = binding.copy_outputs_to_cpu()
        else:
            values = session.run(names, inputs, run_options)
    except Exception as exc:
        if run_options.terminate:
            raise RunTimeLimitExceeded(
                f"The model ran past its time limit of {time_limit:g} s and was stopped."
            ) from exc
        raise
    finally:
        if timer is not None:
            _watchdog().forget(timer)
    outputs = dict(zip(names, values, strict=True))
    if max_output_bytes is not None:
        total = sum(value.nbytes for value in outputs.values() if isinstance(value, np.ndarray))
        if total > max_output_bytes:
            raise OutputTooLarge(
                f"The model returned {total:,} bytes of output; the limit is {max_output_bytes:,} bytes."
            )
    return outputs


class Watchdog:
    """One thread per process that stops runs past their time limit (sets their ``RunOptions.terminate``).

    A run registers its deadline and takes it back when it ends: a push onto a heap under a lock, and a wake-up of
    the thread only when the new deadline is the earliest. A ``threading.Timer`` per run (what this replaces) started
    and stopped a thread for every run, a tenth of the serving loop's CPU on a small model."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Any]] = []
        self._live: set[int] = set()
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._pid = os.getpid()
        threading.Thread(target=self._run, name="onnxruntime-watchdog", daemon=True).start()

    def watch(self, seconds: float, run_options: Any) -> int:
        token = next(self._counter)
        deadline = time.monotonic() + seconds
        with self._wake:
            self._live.add(token)
            heapq.heappush(self._heap, (deadline, token, run_options))
            if self._heap[0][1] == token:
                self._wake.notify()
        return token

    def forget(self, token: int) -> None:
        with self._wake:
            self._live.discard(token)  # its heap entry is dropped when it comes up, or here when many are dead
            if len(self._heap) > 64 and len(self._heap) > 4 * len(self._live):
                self._heap = [entry for entry in self._heap if entry[1] in self._live]
                heapq.heapify(self._heap)

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, token, run_options = self._heap[0]
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._wake.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(token)
                run_options.terminate = True


_watchdogs: dict[int, Watchdog] = {}
_watchdog_lock = threading.Lock()


def _watchdog() -> Watchdog:
    """This process's watchdog (started on first use, and again in a forked child: threads do not survive a fork)."""
    pid = os.getpid()
    found = _watchdogs.get(pid)
    if found is None:
        with _watchdog_lock:
            found = _watchdogs.get(pid)
            if found is None:
                _watchdogs.clear()
                found = _watchdogs[pid] = Watchdog()
    return found


__all__ = [
    "CPU",
    "CachedSession",
    "ModelLoadError",
    "OutputTooLarge",
    "RunTimeLimitExceeded",
    "SessionCache",
    "load_session",
    "resident_bytes",
    "run_session",
    "session_options",
]
