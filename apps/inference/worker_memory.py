"""How much memory a pool process of a worker that runs models may take, by default and as configured.

The limit is on the process's address space (``RLIMIT_AS``, the soft limit, set when the pool starts the process):
an allocation past it fails (ONNX Runtime's ``Failed to allocate memory``, Python's ``MemoryError``), the job
fails saying so (``apps.inference.serving.memory_message``) and the pool replaces the process.

* ``INFERENCE_WORKER_MEMORY_MB`` set: that many MiB (``0``: no limit).
* Unset: ``max(MINIMUM_MB, memory × INFERENCE_WORKER_MEMORY_FRACTION ÷ processes)``, where *memory* is the host's
  memory in MiB, or its cgroup's limit when that is lower (a container), the fraction is 0.5 by default (the rest
  is for the web server, the database, the page cache and the other workers of the host), and *processes* is
  the worker's pool size (``--concurrency``). A 16 GiB host with one process per worker: 8192 MiB.

The default applies to workers that run models (those consuming ``inference.cpu``, ``inference.gpu`` or
``checks``), and not to a process that may use a GPU: CUDA reserves address space far beyond the memory it uses,
so an address-space limit there breaks it (there, a session's device memory is held by ``gpu_mem_limit`` and the
host's by the container's memory limit; an explicit ``INFERENCE_WORKER_MEMORY_MB`` is still applied).

The hard limit is left as it is, so that the validation job's child process sets its own
(``ONNX_VALIDATION_MEMORY_MB``).
"""

from __future__ import annotations

import logging
import os
import resource
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
MINIMUM_MB = 1024
MODEL_QUEUES = frozenset({"inference.cpu", "inference.gpu", "checks"})
CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))

# What this worker is (set in the main process before the pool starts; the pool's processes inherit it), and the
# limit applied to this process (None: none).
_worker: dict[str, object] = {"processes": 1, "queues": frozenset()}
_applied_mb: int | None = None


def machine_memory_mb() -> int:
    """The host's memory in MiB, or its cgroup's limit when that is lower."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < physical:
            physical = int(text)
    return physical // MIB


def default_limit_mb(*, memory_mb: int, processes: int, fraction: float) -> int:
    """``max(MINIMUM_MB, memory_mb × fraction ÷ processes)``: the module docstring's formula."""
    return max(MINIMUM_MB, int(memory_mb * fraction / max(1, processes)))


def note_worker(*, processes: int, queues: set[str] | frozenset[str]) -> None:
    """Remember the worker's pool size and queues (``celeryd_after_setup``, before the pool starts)."""
    _worker.update(processes=max(1, int(processes or 1)), queues=frozenset(queues))


def limit_for_this_process() -> int | None:
    """The limit in MiB this worker's pool processes get (None: none), as the module docstring says."""
    configured = getattr(settings, "INFERENCE_WORKER_MEMORY_MB", None)
    if configured is not None:
        return int(configured) or None
    if not _worker["queues"] & MODEL_QUEUES:
        return None
    from apps.inference.runtime.providers import has_gpu

    if has_gpu():
        return None
    fraction = float(getattr(settings, "INFERENCE_WORKER_MEMORY_FRACTION", 0.5))
    return default_limit_mb(memory_mb=machine_memory_mb(), processes=int(_worker["processes"]), fraction=fraction)


def apply_limit() -> int | None:
    """Set this process's address-space limit (a pool process, as it starts); the MiB applied, or None."""
    global _applied_mb
    limit_mb = limit_for_this_process()
    if limit_mb is None:
        _applied_mb = None
        return None
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = limit_mb * MIB
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    _applied_mb = limit // MIB
    logger.info("Worker process %s: address space limited to %d MiB.", os.getpid(), _applied_mb)
    return _applied_mb


def applied_limit_mb() -> int | None:
    """The limit this process runs under (None: none, or not a pool process)."""
    return _applied_mb
