"""Prometheus metrics of every process: the declarations, the multiprocess files, the exposition and who may read it.

DESIGN.md: django-prometheus + prometheus_client in multiprocess mode. docs/operator/monitoring.md explains each
metric, the scrape configuration and the alerts. This module is a mechanism (core imports no domain app): apps
record through the helpers below (``job_outcome``, ``inference_finished``, ``registry_sync_finished`` ...) and add
scrape-time families with ``register_collector``.

Processes and their files:

* **web** (gunicorn): ``gpux_portal/gunicorn_conf.py`` points ``PROMETHEUS_MULTIPROC_DIR`` at ``<METRICS_DIR>/web``
  (unless the operator set it), wipes it when the master starts and marks each worker that exits as dead. Every
  gunicorn worker writes its own files; ``/metrics`` adds them up, plus the scrape-time families (queues, workers,
  storage, audit verification).
* **Celery workers** started with ``--metrics-port`` (or ``GPUX_WORKER_METRICS_PORT``): ``gpux_portal/celery.py``
  points ``PROMETHEUS_MULTIPROC_DIR`` at ``<METRICS_DIR>/worker-<port>`` and wipes it before Django or any metric is
  loaded; the pool processes write their files there and the worker's main process serves their sum, plus the GPU
  devices, on that port.
* anything else (``manage.py`` commands, ``runserver``, the tests): one process, prometheus_client's own registry.

Labels are bounded: route names (django-prometheus' ``view``, the URL pattern's name, never the path), job kinds,
queues, registry backends, outcomes; models, versions and deployments through ``BoundedLabels``
(``METRICS_MAX_MODEL_SERIES`` a process, the rest under ``(other)``); organizations only in the storage gauge, the
``METRICS_STORAGE_TOP_ORGANIZATIONS`` largest. No user, token or raw path is ever a label (``ALLOWED_LABELS``; a test
checks every exported family against it).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from functools import cache
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import MetricsHandler

from apps.core.metrics_files import default_metrics_root, prepare_multiprocess_dir  # noqa: F401 - re-exported

logger = logging.getLogger(__name__)

OTHER = "(other)"
NONE = ""

# Every label name a family the portal exports may carry (django-prometheus' included). A new label must be added
# here on purpose: tests/core/test_metrics_label_cardinality.py fails on any other.
ALLOWED_LABELS = frozenset(
    {
        # django-prometheus: route name, method, status code, transport, template, charset, exception type, backend
        "view",
        "method",
        "status",
        "transport",
        "templatename",
        "charset",
        "type",
        "backend",
        # the portal's own
        "kind",
        "outcome",
        "queue",
        "model",
        "version",
        "deployment",
        "provider",
        "batch_size",
        "reason",
        "change",
        "result",
        "organization",
        "gpu",
        "name",
        # histograms
        "le",
    }
)

# Seconds: from a cache hit to a long batch job.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, float("inf"))
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, float("inf"))
FILL_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, float("inf"))
BATCH_SIZE_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

# --- the declarations (what docs/operator/monitoring.md describes) ---------------------------------------------------

JOB_OUTCOMES = Counter(
    "gpux_job_outcomes", "Jobs that ended, by kind and outcome (succeeded, failed, cancelled).", ["kind", "outcome"]
)
JOB_DURATION = Histogram(
    "gpux_job_duration_seconds",
    "How long a job's last attempt ran, from its claim by a worker to its outcome.",
    ["kind", "outcome"],
    buckets=JOB_BUCKETS,
)
JOB_QUEUE_WAIT = Histogram(
    "gpux_job_queue_wait_seconds",
    "How long a job waited in its queue, from its creation to its claim by a worker.",
    ["kind", "queue"],
    buckets=JOB_BUCKETS,
)
JOBS_REQUEUED = Counter(
    "gpux_jobs_requeued", "Running jobs the reaper sent again because their worker was lost.", ["kind"]
)
INFERENCE_LATENCY = Histogram(
    "gpux_inference_latency_seconds",
    "A prediction's latency, from its request to its answer (queue wait included), by model, version, deployment, "
    "execution provider really used and the size of the batch it ran in.",
    ["model", "version", "deployment", "provider", "batch_size"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_ERRORS = Counter(
    "gpux_inference_errors",
    "Predictions that failed, by model, deployment and reason (input, load, time_limit, memory, error).",
    ["model", "deployment", "reason"],
)
INFERENCE_BATCH_FILL = Histogram(
    "gpux_inference_batch_fill_ratio",
    "How full the merged batches of a batching deployment were: items run together / its max_batch_size.",
    ["deployment"],
    buckets=FILL_BUCKETS,
)
INFERENCE_SESSION_CACHE = Counter(
    "gpux_inference_session_cache",
    "Lookups in the inference workers' session caches: hit, miss (a model loaded) and eviction.",
    ["result"],
)
REGISTRY_SYNCS = Counter(
    "gpux_registry_syncs",
    "Registry syncs that ended, by backend and outcome (succeeded, failed).",
    ["backend", "outcome"],
)
REGISTRY_SYNC_MODELS = Counter(
    "gpux_registry_sync_models",
    "Models a registry sync wrote, by backend and change (created, updated, removed, failed).",
    ["backend", "change"],
)

# Families that exist only at scrape time (collectors): name -> (type, label names, help). The tests and the alerting
# assets' check read this table, as they read the objects above.
SCRAPE_TIME_FAMILIES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "gpux_queue_messages": ("gauge", ("queue",), "Messages waiting in a job queue of the broker."),
    "gpux_queue_oldest_message_age_seconds": (
        "gauge",
        ("queue",),
        "Age of the oldest message waiting in a queue (0 when it is empty).",
    ),
    "gpux_workers_up": ("gauge", ("queue",), "Celery workers consuming the queue whose heartbeat is recent."),
    "gpux_organization_storage_bytes": (
        "gauge",
        ("organization",),
        "Bytes the organization stores (distinct blobs of its versions), for the largest organizations; the rest "
        'summed under organization="(other)".',
    ),
    "gpux_audit_chains": ("gauge", ("result",), "Audit hash chains found intact or broken by the last verification."),
    "gpux_audit_chain_verification_timestamp_seconds": (
        "gauge",
        (),
        "When the audit chains were last verified (Unix time).",
    ),
    "gpux_usage_stream_entries": (
        "gauge",
        (),
        "Usage events waiting in the usage stream for the drain (drained entries are deleted from it).",
    ),
    "gpux_usage_stream_pending_entries": (
        "gauge",
        (),
        "Usage stream entries the drain read but has not acknowledged (a batch in flight, or a drain that died).",
    ),
    "gpux_usage_stream_oldest_entry_age_seconds": (
        "gauge",
        (),
        "Age of the oldest usage event not yet drained (0 when the stream is empty).",
    ),
    "gpux_usage_stream_max_entries": (
        "gauge",
        (),
        "The usage stream's cap (USAGE_STREAM_MAX_LENGTH): past it Redis trims the oldest events, which are lost.",
    ),
    "gpux_gpu_utilization_ratio": ("gauge", ("gpu",), "GPU busy time over the last sample period (0..1), per device."),
    "gpux_gpu_memory_used_bytes": ("gauge", ("gpu",), "GPU memory in use, per device."),
    "gpux_gpu_memory_total_bytes": ("gauge", ("gpu",), "GPU memory installed, per device."),
    "gpux_gpu_info": ("gauge", ("gpu", "name"), "1 per GPU device of the worker, with its product name."),
}
DECLARED = (
    JOB_OUTCOMES,
    JOB_DURATION,
    JOB_QUEUE_WAIT,
    JOBS_REQUEUED,
    INFERENCE_LATENCY,
    INFERENCE_ERRORS,
    INFERENCE_BATCH_FILL,
    INFERENCE_SESSION_CACHE,
    REGISTRY_SYNCS,
    REGISTRY_SYNC_MODELS,
)


def _safely(function: Callable[..., None]) -> Callable[..., None]:
    """Recording a metric never fails the work it measures."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            function(*args, **kwargs)
        except Exception:
            logger.warning("Could not record metric %s", function.__name__, exc_info=True)

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


class BoundedLabels:
    """At most ``limit`` distinct label tuples in this process; later ones are all ``(other)``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()

    def __call__(self, *values: str) -> tuple[str, ...]:
        key = tuple(str(value) for value in values)
        if key in self._seen:
            return key
        with self._lock:
            if key in self._seen or len(self._seen) < self.limit:
                self._seen.add(key)
                return key
        return (OTHER,) * len(key)


@cache
def model_series() -> BoundedLabels:
    from django.conf import settings

    return BoundedLabels(int(getattr(settings, "METRICS_MAX_MODEL_SERIES", 200)))


def batch_size_label(size: int) -> str:
    """The batch size as the smallest power of two at least as large (``"4"`` holds 3 and 4), ``"more"`` past 256."""
    for bound in BATCH_SIZE_BOUNDS:
        if size <= bound:
            return str(bound)
    return "more"


# --- recording ----------------------------------------------------------------------------------------------------


def _seconds_between(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


@_safely
def job_claimed(job: Any) -> None:
    """A worker claimed ``job``: how long it waited in its queue."""
    waited = _seconds_between(job.created_at, job.started_at)
    if waited is not None:
        JOB_QUEUE_WAIT.labels(kind=job.kind, queue=job.queue).observe(waited)


@_safely
def job_outcome(job: Any, outcome: str, *, finished_at: Any = None) -> None:
    """The outcome of ``job`` was recorded (``succeeded``, ``failed`` or ``cancelled``): count it and, for an
    attempt that ran, how long it ran."""
    from django.utils import timezone

    JOB_OUTCOMES.labels(kind=job.kind, outcome=str(outcome)).inc()
    ran = _seconds_between(job.started_at, finished_at or getattr(job, "finished_at", None) or timezone.now())
    if ran is not None and job.started_at is not None:
        JOB_DURATION.labels(kind=job.kind, outcome=str(outcome)).observe(ran)


@_safely
def job_requeued(job: Any) -> None:
    JOBS_REQUEUED.labels(kind=job.kind).inc()


@_safely
def inference_finished(
    *, model: str, version: str, deployment: str, provider: str, batch_size: int, seconds: float
) -> None:
    """A prediction answered after ``seconds`` (from its request), having run in a batch of ``batch_size``."""
    model, version, deployment = model_series()(model, version, deployment)
    INFERENCE_LATENCY.labels(
        model=model,
        version=version,
        deployment=deployment,
        provider=provider or "unknown",
        batch_size=batch_size_label(batch_size),
    ).observe(max(0.0, seconds))


@_safely
def inference_failed(*, model: str, deployment: str, reason: str) -> None:
    model, _version, deployment = model_series()(model, OTHER, deployment)
    INFERENCE_ERRORS.labels(model=model, deployment=deployment, reason=reason).inc()


@_safely
def inference_batch(*, deployment: str, items: int, max_batch_size: int) -> None:
    """A batching deployment ran ``items`` requests merged, of at most ``max_batch_size``."""
    if max_batch_size > 1:
        (deployment,) = model_series()(deployment)
        INFERENCE_BATCH_FILL.labels(deployment=deployment).observe(items / max_batch_size)


@_safely
def session_cache(result: str, count: int = 1) -> None:
    INFERENCE_SESSION_CACHE.labels(result=result).inc(count)


@_safely
def registry_sync_finished(*, backend: str, ok: bool, counts: dict[str, int]) -> None:
    REGISTRY_SYNCS.labels(backend=backend, outcome="succeeded" if ok else "failed").inc()
    for change in ("created", "updated", "removed", "failed"):
        if counts.get(change):
            REGISTRY_SYNC_MODELS.labels(backend=backend, change=change).inc(counts[change])


# --- multiprocess files -------------------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    """The folder of this process's metric files, when it runs in multiprocess mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def multiprocess_enabled() -> bool:
    """Whether prometheus_client records into files (decided when it was first imported)."""
    from prometheus_client import values

    return bool(multiprocess_dir()) and getattr(values.ValueClass, "_multiprocess", False)


def mark_process_dead(pid: int) -> None:
    """A process that wrote metric files is gone (gunicorn's ``child_exit``, a pool process leaving)."""
    path = multiprocess_dir()
    if path and os.path.isdir(path):
        multiprocess.mark_process_dead(pid, path)


# --- scrape-time collectors and the exposition -------------------------------------------------------------------

_collectors: list[Callable[[], Iterable[Metric]]] = []


def register_collector(function: Callable[[], Iterable[Metric]]) -> Callable[[], Iterable[Metric]]:
    """Add families computed at scrape time to the web's ``/metrics`` (an app's ``ready()`` calls it). The function
    must be cheap (a cached query, a few Redis commands): Prometheus calls it every scrape interval."""
    if function not in _collectors:
        _collectors.append(function)
    return function


def family(name: str, samples: Iterable[tuple[tuple[str, ...], float]]) -> GaugeMetricFamily:
    """A scrape-time gauge family of ``SCRAPE_TIME_FAMILIES`` with its samples (label values, value)."""
    _kind, labels, documentation = SCRAPE_TIME_FAMILIES[name]
    gauge = GaugeMetricFamily(name, documentation, labels=list(labels))
    for values, value in samples:
        gauge.add_metric(list(values), value)
    return gauge


class _FunctionsCollector:
    def __init__(self, functions: Iterable[Callable[[], Iterable[Metric]]]) -> None:
        self.functions = list(functions)

    def collect(self) -> Iterable[Metric]:
        for function in self.functions:
            try:
                yield from function()
            except Exception:  # one broken source (Redis away) must not empty the whole page
                logger.warning("Metrics collector %s failed", getattr(function, "__name__", function), exc_info=True)


class _ProcessRegistry:
    """This process's own registry (single-process mode: runserver, commands, tests), without prometheus_client's
    process, platform and garbage-collector families, which the multiprocess mode of production does not have."""

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import REGISTRY

        for metric in REGISTRY.collect():
            if not metric.name.startswith(("python_", "process_")):
                yield metric


def process_registry() -> CollectorRegistry:
    """What the processes of this service recorded: the sum of their files, or this process's own registry."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_enabled():
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir())
    else:
        registry.register(_ProcessRegistry())
    return registry


def exposition_registry(*, cluster: bool = False, gpu: bool = False) -> CollectorRegistry:
    """The registry a scrape reads: this service's processes, plus the cluster-wide families (the web's ``/metrics``)
    or the GPU devices (a worker's port)."""
    registry = process_registry()
    sources: list[Callable[[], Iterable[Metric]]] = []
    if cluster:
        sources.extend([queue_families, worker_families, *_collectors])
    if gpu:
        sources.append(gpu_families)
    if sources:
        registry.register(_FunctionsCollector(sources))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(registry)


# --- who may scrape -------------------------------------------------------------------------------------------------


def _networks() -> list[Any]:
    from django.conf import settings

    networks = []
    for entry in getattr(settings, "METRICS_ALLOWED_NETWORKS", []):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            logger.error("METRICS_ALLOWED_NETWORKS: %r is not a network; ignored", entry)
    return networks


def scrape_refusal(authorization: str | None, client_ip: str | None) -> int | None:
    """None when the caller may read the metrics, else the status to answer: 403 for a wrong bearer token, 404 for
    anyone else (nothing tells them that the route exists).

    Allowed: ``Authorization: Bearer <METRICS_BEARER_TOKEN>``, or a client address in ``METRICS_ALLOWED_NETWORKS``
    (the loopback addresses by default outside production)."""
    from django.conf import settings

    token = getattr(settings, "METRICS_BEARER_TOKEN", "") or ""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if token and scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode()):
            return None
        return 403
    if client_ip:
        try:
            address = ipaddress.ip_address(client_ip.split("%", 1)[0])
        except ValueError:
            return 404
        if any(address in network for network in _networks()):
            return None
    return 404


# --- the broker's queues ------------------------------------------------------------------------------------------

SENT_AT_HEADER = "gpux_sent_at"
# kombu's Redis transport keeps a queue's messages under its name, and those of priorities 3, 6 and 9 under
# "<name>\x06\x16<priority>" (its default priority steps).
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)


def job_queues() -> list[str]:
    from apps.core.jobs import JobQueue

    return list(JobQueue.values)


@cache
def _redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def broker_redis() -> Any | None:
    """A Redis client for the Celery broker, or None when the broker is not Redis (the embedded file broker)."""
    from django.conf import settings

    url = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return _redis_client(url)


def _broker_folder() -> Path | None:
    from django.conf import settings

    if not str(getattr(settings, "CELERY_BROKER_URL", "")).startswith("filesystem://"):
        return None
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    folder = options.get("data_folder_out")
    return Path(folder) if folder else None


def _sent_at(raw: bytes | str | None) -> float | None:
    if not raw:
        return None
    try:
        value = json.loads(raw).get("headers", {}).get(SENT_AT_HEADER)
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def queue_depths(now: float | None = None) -> dict[str, tuple[int, float]]:
    """Per job queue: messages waiting and the age in seconds of the oldest (0 when empty or unknown).

    Redis broker: ``LLEN`` of each priority list and a peek (``LINDEX -1``, the next message out) at the oldest, all in
    one pipeline: four keys a queue, whatever the backlog. File broker: the queue's message files."""
    now = time.time() if now is None else now
    queues = job_queues()
    client = broker_redis()
    if client is not None:
        keys = [
            queue if step == 0 else f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}"
            for queue in queues
            for step in REDIS_PRIORITY_STEPS
        ]
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.llen(key)
                pipe.lindex(key, -1)
            answers = pipe.execute()
        depths: dict[str, tuple[int, float]] = {}
        for index, queue in enumerate(queues):
            count, oldest = 0, None
            for step in range(len(REDIS_PRIORITY_STEPS)):
                position = (index * len(REDIS_PRIORITY_STEPS) + step) * 2
                count += int(answers[position] or 0)
                sent = _sent_at(answers[position + 1])
                if sent is not None:
                    oldest = sent if oldest is None else min(oldest, sent)
            depths[queue] = (count, max(0.0, now - oldest) if oldest is not None and count else 0.0)
        return depths
    folder = _broker_folder()
    if folder is None:
        return {}
    depths = {}
    for queue in queues:
        files = sorted(folder.glob(f"*.{queue}.msg"))
        oldest_age = 0.0
        if files:
            try:
                sent = _sent_at(files[0].read_bytes()) or files[0].stat().st_mtime
                oldest_age = max(0.0, now - sent)
            except OSError:  # taken by a worker meanwhile
                pass
        depths[queue] = (len(files), oldest_age)
    return depths


def queue_families() -> Iterable[Metric]:
    depths = queue_depths()
    if not depths:
        return
    yield family("gpux_queue_messages", [((queue,), count) for queue, (count, _age) in depths.items()])
    yield family("gpux_queue_oldest_message_age_seconds", [((queue,), age) for queue, (_c, age) in depths.items()])


# --- worker heartbeats --------------------------------------------------------------------------------------------

HEARTBEAT_INDEX = "gpux:workers"
HEARTBEAT_PREFIX = "gpux:worker:"


def heartbeat_seconds() -> float:
    from django.conf import settings

    return float(getattr(settings, "WORKER_HEARTBEAT_SECONDS", 10))


def heartbeat_ttl() -> float:
    """A worker whose last heartbeat is older than this is down (three missed beats)."""
    return heartbeat_seconds() * 3


def _heartbeat_folder() -> Path | None:
    folder = _broker_folder()
    return folder.parent / "heartbeats" if folder is not None else None


def write_heartbeat(record: dict[str, Any]) -> None:
    """Store a worker's heartbeat (its name, queues, pid, time, GPUs, a snapshot of its metrics) where the web can
    read it: the broker's Redis (a key that expires, and an index of names), or a file beside the file broker."""
    client = broker_redis()
    ttl = heartbeat_ttl()
    payload = json.dumps(record, separators=(",", ":"))
    if client is not None:
        with client.pipeline(transaction=False) as pipe:
            pipe.set(HEARTBEAT_PREFIX + record["name"], payload, ex=max(1, int(ttl)))
            pipe.zadd(HEARTBEAT_INDEX, {record["name"]: record["at"]})
            pipe.zremrangebyscore(HEARTBEAT_INDEX, "-inf", record["at"] - 10 * ttl)
            pipe.execute()
        return
    folder = _heartbeat_folder()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{record['name']}.json"
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(payload)
        os.replace(temporary, target)


def withdraw_heartbeat(name: str) -> None:
    client = broker_redis()
    if client is not None:
        with client.pipeline(transaction=False) as pipe:
            pipe.delete(HEARTBEAT_PREFIX + name)
            pipe.zrem(HEARTBEAT_INDEX, name)
            pipe.execute()
        return
    folder = _heartbeat_folder()
    if folder is not None:
        (folder / f"{name}.json").unlink(missing_ok=True)


def live_workers(now: float | None = None) -> list[dict[str, Any]]:
    """The heartbeats of the workers that beat within ``heartbeat_ttl()``."""
    now = time.time() if now is None else now
    ttl = heartbeat_ttl()
    records: list[dict[str, Any]] = []
    client = broker_redis()
    if client is not None:
        names = client.zrangebyscore(HEARTBEAT_INDEX, now - ttl, "+inf")
        if names:
            raw = client.mget([HEARTBEAT_PREFIX + name.decode() for name in names])
            records = [json.loads(item) for item in raw if item]
    else:
        folder = _heartbeat_folder()
        if folder is not None and folder.is_dir():
            for path in folder.glob("*.json"):
                try:
                    records.append(json.loads(path.read_text()))
                except (OSError, ValueError):
                    continue
    return sorted((r for r in records if now - float(r.get("at", 0)) <= ttl), key=lambda r: r["name"])


def workers_up(now: float | None = None) -> dict[str, int]:
    """Live workers per job queue (every job queue listed, 0 included)."""
    counts = dict.fromkeys(job_queues(), 0)
    for record in live_workers(now):
        for queue in record.get("queues", []):
            counts[queue] = counts.get(queue, 0) + 1
    return counts


def worker_families() -> Iterable[Metric]:
    yield family("gpux_workers_up", [((queue,), count) for queue, count in workers_up().items()])


# --- GPU devices (nvidia-ml-py) -----------------------------------------------------------------------------------


def _nvml() -> Any | None:
    """NVML (the ``pynvml`` module of nvidia-ml-py), initialised; None without an NVIDIA driver or GPU."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError: no driver library, no device
        return None
    return pynvml


def gpu_devices() -> list[dict[str, Any]]:
    """Each NVIDIA device's index, name, utilisation (0..1) and memory; empty where there is none."""
    nvml = _nvml()
    if nvml is None:
        return []
    devices = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            utilization = nvml.nvmlDeviceGetUtilizationRates(handle)
            devices.append(
                {
                    "gpu": str(index),
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "utilization": float(utilization.gpu) / 100.0,
                    "memory_used": int(memory.used),
                    "memory_total": int(memory.total),
                }
            )
    except Exception:
        logger.warning("Could not read the GPU devices through NVML", exc_info=True)
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            logger.debug("nvmlShutdown failed", exc_info=True)
    return devices


def gpu_families(devices: list[dict[str, Any]] | None = None) -> Iterable[Metric]:
    devices = gpu_devices() if devices is None else devices
    if not devices:
        return
    yield family("gpux_gpu_utilization_ratio", [((d["gpu"],), d["utilization"]) for d in devices])
    yield family("gpux_gpu_memory_used_bytes", [((d["gpu"],), d["memory_used"]) for d in devices])
    yield family("gpux_gpu_memory_total_bytes", [((d["gpu"],), d["memory_total"]) for d in devices])
    yield family("gpux_gpu_info", [((d["gpu"], d["name"]), 1) for d in devices])


# --- a worker's port and heartbeat (started by gpux_portal/celery.py in the worker's main process) ----------------


class _ScrapeHandler(MetricsHandler):
    """prometheus_client's handler behind the same rule as the web's ``/metrics`` (``scrape_refusal``)."""

    def do_GET(self) -> None:
        refusal = scrape_refusal(self.headers.get("Authorization"), self.client_address[0])
        if refusal is not None:
            self.send_response(refusal)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Not found.\n" if refusal == 404 else b"Forbidden.\n")
            return
        self.registry = exposition_registry(gpu=True)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics %s " + format, self.client_address[0], *args)


class WorkerMetricsServer:
    """The worker's metrics port (a thread of its main process) and its heartbeat thread."""

    def __init__(self, *, name: str, queues: Iterable[str], port: int | None, address: str = "127.0.0.1") -> None:
        self.name = name
        self.queues = sorted(set(queues))
        self.port = port
        self.address = address
        self.started_at = time.time()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> WorkerMetricsServer:
        if self.port:
            try:
                self._server = ThreadingHTTPServer((self.address, int(self.port)), _ScrapeHandler)
            except OSError as exc:
                logger.error("Worker %s: cannot serve metrics on %s:%s: %s", self.name, self.address, self.port, exc)
            else:
                self._server.daemon_threads = True
                thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
                thread.start()
                self._threads.append(thread)
                logger.info("Worker %s serves its metrics on %s:%s", self.name, self.address, self.port)
        beat = threading.Thread(target=self._beat_forever, name="metrics-heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)
        return self

    def heartbeat_record(self) -> dict[str, Any]:
        from apps.core.metrics_snapshot import snapshot

        return {
            "name": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.queues,
            "at": time.time(),
            "started_at": self.started_at,
            "metrics_port": self.port or None,
            "gpus": gpu_devices(),
            "metrics": snapshot(process_registry()) if multiprocess_enabled() else {},
        }

    def beat(self) -> None:
        write_heartbeat(self.heartbeat_record())

    def _beat_forever(self) -> None:
        interval = heartbeat_seconds()
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception:  # the broker away for a moment: the next beat tries again
                logger.warning("Worker %s: heartbeat failed", self.name, exc_info=True)
            self._stop.wait(interval)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        try:
            withdraw_heartbeat(self.name)
        except Exception:
            logger.warning("Worker %s: could not withdraw its heartbeat", self.name, exc_info=True)


# --- the names the portal exports (the alerting assets' test reads them) -----------------------------------------


def _sample_names(metric: Any) -> set[str]:
    names: set[str] = set()
    for described in metric.describe():
        if described.type == "counter":
            names.add(f"{described.name}_total")
        elif described.type == "histogram":
            names.update(f"{described.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(described.name)
    return names


def exported_sample_names() -> set[str]:
    """Every sample name a scrape of the portal can hold: the declarations above, the scrape-time families and
    django-prometheus' request and cache metrics."""
    from django_prometheus.cache import metrics as cache_metrics
    from django_prometheus.middleware import Metrics as RequestMetrics

    names = set(SCRAPE_TIME_FAMILIES)
    sources = [*DECLARED, *vars(RequestMetrics.get_instance()).values(), *vars(cache_metrics).values()]
    for metric in sources:
        if hasattr(metric, "describe") and hasattr(metric, "_labelnames"):
            names |= _sample_names(metric)
    return names
