"""Performance cards: what a version costs to run, measured on a worker when it is published (and on request).

``start_performance_card`` queues a job (kind ``inference.performance``) on the ``checks`` queue, beside validation:
a model nobody has run yet is measured by a worker of its own, so interactive predictions never wait behind it
(a never-ending Loop included), under a short time limit (``INFERENCE_PERFORMANCE_TIME_LIMIT_SECONDS``) that also
bounds every run. The card measures whatever the ``checks`` worker's host has (run one on a GPU node for GPU
cards; the provider ONNX Runtime really used is recorded).

On the worker, ``measure`` loads the version through ``load_version`` (a fresh session, so the growth of the
resident set while loading is what it costs in memory), makes inputs from its signature (dynamic batch dimensions
take the batch size tried, other dynamic dimensions a sequence length of 32, or the manifest's ``max_length`` when
smaller; integer inputs get small in-range ints, attention masks ones, token type ids zeros; floats random normal
values), warms it up and times ``run_version`` at batch 1, then at 2, 4, ... up to
``INFERENCE_PERFORMANCE_MAX_BATCH`` while throughput keeps rising, all within about
``INFERENCE_PERFORMANCE_BUDGET_SECONDS``. ``record_card`` writes the ``PerformanceCard`` (one per job: an attempt
that runs twice records one card): latency p50/p95 at batch 1 and at the best batch size, the throughput there,
memory, the provider ONNX Runtime really used and the device (the CPU model, or the GPU's name).

``measure_after_publish`` is the catalog's hook: with ``INFERENCE_PERFORMANCE_CARD_ON_PUBLISH`` on, the job is
queued once the publication commits; a failure to queue it is logged and never fails the publication.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from apps.core.jobs import Job, JobQueue
from apps.inference.execution import load_version, manifest_of, run_version, session_cache
from apps.inference.models import PerformanceCard
from apps.inference.runtime.providers import GPU_PROVIDERS
from apps.inference.runtime.sessions import RunTimeLimitExceeded, resident_bytes
from apps.inference.runtime.validation import NUMPY_TYPES, batch_axis, validate_inputs
from apps.marketplace.models import ModelVersion, ValidationStatus

logger = logging.getLogger(__name__)

PERFORMANCE_KIND = "inference.performance"
DEFAULT_SEQUENCE = 32
MIN_RUNS = 5
MAX_RUNS = 200
WARM_UP_RUNS = 2
GAIN = 1.02  # a larger batch must raise throughput by 2 % to count as still rising (noise is about that)
MIB = 1024 * 1024


class NotMeasurable(Exception):
    """The version has an input that cannot be made up from its signature (not a tensor, unknown type)."""


# --- starting ----------------------------------------------------------------------------------------------------


def start_performance_card(*, version: ModelVersion, actor: Any) -> Job:
    """Queue the job that measures ``version`` (``job.created`` in its organization's audit trail)."""
    from apps.core.job_services import start_job

    return start_job(
        kind=PERFORMANCE_KIND,
        organization=version.model.organization,
        creator=actor,
        params={"version": str(version.uuid), "model": str(version.model), "label": version.label},
        queue=getattr(settings, "INFERENCE_FORCE_QUEUE", None) or JobQueue.CHECKS,
        time_limit=int(settings.INFERENCE_PERFORMANCE_TIME_LIMIT_SECONDS),
    )


def measure_after_publish(*, version: ModelVersion, actor: Any) -> None:
    """After ``version`` was published: queue its performance card once the transaction commits, when
    ``INFERENCE_PERFORMANCE_CARD_ON_PUBLISH`` is on. Never raises: publishing must not depend on the workers."""
    if not getattr(settings, "INFERENCE_PERFORMANCE_CARD_ON_PUBLISH", True):
        return
    version_id, actor_id = version.pk, getattr(actor, "pk", None)

    def start() -> None:
        try:
            fresh = ModelVersion.objects.select_related("model__organization").get(pk=version_id)
            if fresh.validation_status == ValidationStatus.PASSED and (fresh.signature or {}).get("inputs"):
                from django.contrib.auth import get_user_model

                who = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
                start_performance_card(version=fresh, actor=who)
        except Exception:
            logger.exception("Could not queue the performance card of version %s", version_id)

    transaction.on_commit(start)


def measure_when_published(sender: Any, *, version: ModelVersion, actor: Any, **kwargs: Any) -> None:
    """The catalog's ``version_published``: ``measure_after_publish``."""
    measure_after_publish(version=version, actor=actor)


def latest_card(version: ModelVersion) -> PerformanceCard | None:
    """The newest performance card of ``version``, or None."""
    return PerformanceCard.objects.filter(version=version).order_by("-measured_at", "-id").first()


# --- synthesizing inputs -----------------------------------------------------------------------------------------


def sequence_length(manifest: dict[str, Any]) -> int:
    """The length of non-batch dynamic dimensions: 32, or the manifest's ``max_length`` when that is smaller."""
    max_length = (manifest.get("preprocessing") or {}).get("max_length")
    if isinstance(max_length, int) and 0 < max_length < DEFAULT_SEQUENCE:
        return max_length
    return DEFAULT_SEQUENCE


def _int_values(name: str, shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    lowered = name.lower()
    if "mask" in lowered:
        return np.ones(shape, dtype=dtype)
    if "type" in lowered and "id" in lowered:
        return np.zeros(shape, dtype=dtype)
    if "position" in lowered and len(shape) >= 1:
        return np.broadcast_to(np.arange(shape[-1], dtype=dtype), shape).copy()
    high = min(1000, int(np.iinfo(dtype).max) + 1)  # token ids 0..999 fit every vocabulary; small types stay in range
    return rng.integers(0, high, size=shape, dtype=dtype)


def synthesize_inputs(
    signature: dict[str, Any], *, batch: int, sequence: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Inputs for every input of ``signature``: the batch dimension (axis 0, when dynamic) is ``batch``, other
    dynamic dimensions ``sequence``; values as the module docstring says. ``NotMeasurable`` for inputs that are
    not tensors of a known type."""
    arrays: dict[str, np.ndarray] = {}
    for entry in signature.get("inputs", []):
        name, elem_type, declared = entry["name"], entry.get("elem_type"), entry.get("shape")
        if not isinstance(elem_type, str) or elem_type not in NUMPY_TYPES:
            raise NotMeasurable(f"inputs.{name}: a {elem_type} cannot be made up for measuring.")
        if declared is None:
            declared = [None]
        shape = tuple(
            dim if isinstance(dim, int) and dim > 0 else (batch if axis == 0 else sequence)
            for axis, dim in enumerate(declared)
        )
        dtype = np.dtype(NUMPY_TYPES[elem_type])
        if dtype.kind == "f":
            arrays[name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            arrays[name] = _int_values(name, shape, dtype, rng)
        elif dtype.kind == "b":
            arrays[name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        else:
            strings = np.empty(shape, dtype=np.object_)
            strings.fill("a short text to measure with")
            arrays[name] = strings
    return arrays


def batch_sizes(signature: dict[str, Any], maximum: int) -> list[int]:
    """1, 2, 4, ... up to ``maximum`` for a model with a dynamic batch dimension; ``[1]`` for the others."""
    if not batch_axis(signature):
        return [1]
    sizes, size = [], 1
    while size <= max(1, maximum):
        sizes.append(size)
        size *= 2
    return sizes


# --- measuring ---------------------------------------------------------------------------------------------------


def device_name(provider: str) -> str:
    """What the session ran on: the GPU's name for a GPU provider, else the CPU's model name."""
    if provider in GPU_PROVIDERS:
        smi = shutil.which("nvidia-smi")
        if smi and provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
            try:
                found = subprocess.run(  # noqa: S603 -- a fixed command, no user input
                    [smi, "--query-gpu=name", "--format=csv,noheader"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=False,
                )
                names = [line.strip() for line in found.stdout.splitlines() if line.strip()]
                if names:
                    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
                    index = int(visible) if visible.isdigit() and int(visible) < len(names) else 0
                    return names[index]
            except (OSError, subprocess.SubprocessError, ValueError):
                pass
        return "GPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


@dataclass
class SizeTiming:
    """The runs at one batch size."""

    batch_size: int
    p50_ms: float
    p95_ms: float
    runs: int
    throughput: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "p50_ms": round(self.p50_ms, 4),
            "p95_ms": round(self.p95_ms, 4),
            "runs": self.runs,
            "throughput": round(self.throughput, 2),
        }


@dataclass
class Measurement:
    """What ``measure`` found, before it is written as a card."""

    version: ModelVersion
    provider: str
    device: str
    memory_mb: float
    load_ms: float
    sizes: list[SizeTiming] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_1(self) -> SizeTiming:
        return self.sizes[0]

    @property
    def best(self) -> SizeTiming:
        return max(self.sizes, key=lambda size: size.throughput)


def _forget_cached(version: ModelVersion) -> None:
    """Drop this process's cached sessions of ``version``, so loading it again shows what it costs."""
    cache = session_cache()
    cached = cache.keys()  # a SessionCache, not a dict: a list of its keys, least recently used first
    for key in cached:
        if isinstance(key, tuple) and key and key[0] == str(version.uuid):
            cache.discard(key)
    gc.collect()


_primed = False


def _prime_runtime() -> None:
    """Pay this process's one-time costs (ONNX Runtime's environment and thread pools, the processing modules)
    before measuring, so that a card's memory is the model's own: a tiny Identity model, loaded and run once."""
    global _primed
    if _primed:
        return
    import onnxruntime
    from onnx import TensorProto, helper

    import apps.inference.processing  # noqa: F401 -- imported by load_version; its cost is not the model's
    from apps.inference.runtime.sessions import session_options

    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "prime",
        [value],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=session_options(), providers=["CPUExecutionProvider"]
    )
    session.run(None, {"x": np.zeros(1, dtype=np.float32)})
    del session
    gc.collect()
    _primed = True


def _time_size(loaded: Any, inputs: dict[str, np.ndarray], *, budget: float, time_limit: float) -> list[float]:
    """Milliseconds of each timed run at one size: warm-up first (each run stopped past ``time_limit``, what is
    left of the job's), then runs until ``MAX_RUNS`` or until ``budget`` seconds are spent with at least
    ``MIN_RUNS``."""
    for _ in range(WARM_UP_RUNS):
        run_version(loaded, inputs, time_limit=time_limit)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < MAX_RUNS and (len(times) < MIN_RUNS or time.perf_counter() - started < budget):
        began = time.perf_counter()
        # No watchdog thread nor memory count per run: they would be timed too; the warm-up had both.
        run_version(loaded, inputs, count_memory=False)
        times.append((time.perf_counter() - began) * 1000)
    return times


def measure(job: Job, progress: Any = None) -> Measurement:
    """Measure the version named by ``job.params["version"]`` (see the module docstring)."""
    version = ModelVersion.objects.select_related("model__organization").get(uuid=job.params["version"])
    signature = version.signature or {}
    if not signature.get("inputs"):
        raise NotMeasurable(f"{version} has no signature (it has not passed validation): there is nothing to feed it.")
    # Every run ends by the job's own time limit (ONNX Runtime's terminate flag), a never-ending Loop included.
    job_deadline = time.monotonic() + float(job.time_limit)
    budget = float(settings.INFERENCE_PERFORMANCE_BUDGET_SECONDS)
    sizes = batch_sizes(signature, int(settings.INFERENCE_PERFORMANCE_MAX_BATCH))
    sequence = sequence_length(manifest_of(version))
    _prime_runtime()
    _forget_cached(version)
    before = resident_bytes()
    started = time.perf_counter()
    loaded = load_version(version)
    load_ms = (time.perf_counter() - started) * 1000
    memory_mb = max(0, resident_bytes() - before) / MIB
    provider = loaded.session.get_providers()[0]
    measurement = Measurement(version, provider, device_name(provider), memory_mb, load_ms)
    rng = np.random.default_rng(0)
    deadline = time.monotonic() + budget
    per_size = budget / (len(sizes) + 1)
    stopped = "largest batch size tried" if len(sizes) > 1 else "no dynamic batch dimension"
    shapes: dict[str, list[int]] = {}
    for index, size in enumerate(sizes):
        if size > 1 and time.monotonic() >= deadline:
            stopped = "time budget spent"
            break
        inputs = validate_inputs(signature, synthesize_inputs(signature, batch=size, sequence=sequence, rng=rng))
        try:
            left = max(1.0, job_deadline - time.monotonic())
            times = _time_size(loaded, inputs, budget=per_size if size > 1 else per_size * 2, time_limit=left)
        except RunTimeLimitExceeded as exc:
            if size == 1:
                raise RunTimeLimitExceeded(
                    f"The model ran past the performance card's time limit of {job.time_limit} s and was stopped."
                ) from exc
            stopped = f"batch {size} ran past the card's time limit"
            break
        except Exception as exc:
            if size == 1:
                raise
            stopped = f"batch {size} failed: {str(exc) or type(exc).__name__}"[:300]
            break
        p50, p95 = (float(value) for value in np.percentile(times, [50, 95]))
        timing = SizeTiming(size, p50, p95, len(times), size / (p50 / 1000) if p50 > 0 else float(size) * 1e6)
        previous_best = measurement.best.throughput if measurement.sizes else None
        measurement.sizes.append(timing)
        shapes = {name: list(array.shape) for name, array in inputs.items()}
        if progress is not None:
            progress((index + 1) / (len(sizes) + 1), f"batch {size}: p50 {p50:.3f} ms, {timing.throughput:,.0f}/s")
        if previous_best is not None and timing.throughput < previous_best * GAIN:
            stopped = f"throughput stopped rising at batch {size}"
            break
    measurement.details = {
        "sizes": [size.as_dict() for size in measurement.sizes],
        "stopped": stopped,
        "sequence_length": sequence,
        "largest_inputs": shapes,
        "budget_seconds": budget,
        "load_ms": round(load_ms, 3),
        "threads": _threads(),
        "cpu_count": os.cpu_count(),
        "worker": platform.node(),
        "onnxruntime": _ort_version(),
    }
    return measurement


def _threads() -> int:
    from apps.inference.runtime.sessions import default_threads

    return default_threads()


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def record_card(job: Job, measurement: Measurement) -> PerformanceCard:
    """Write the job's card (the same row if this job already wrote one: one card per job)."""
    batch_1, best = measurement.batch_1, measurement.best
    card, _ = PerformanceCard.objects.update_or_create(
        job=job,
        defaults={
            "version": measurement.version,
            "provider": measurement.provider,
            "device": measurement.device[:200],
            "latency_p50_ms": batch_1.p50_ms,
            "latency_p95_ms": batch_1.p95_ms,
            "best_batch_size": best.batch_size,
            "best_batch_p50_ms": best.p50_ms,
            "best_batch_p95_ms": best.p95_ms,
            "throughput": best.throughput,
            "memory_mb": round(measurement.memory_mb, 2),
            "details": measurement.details,
        },
    )
    return card


def card_summary(card: PerformanceCard) -> dict[str, Any]:
    """A card as the API and the job's result show it."""
    return {
        "version": card.version.label if card.version_id else None,
        "provider": card.provider,
        "device": card.device,
        "latency_p50_ms": card.latency_p50_ms,
        "latency_p95_ms": card.latency_p95_ms,
        "best_batch_size": card.best_batch_size,
        "best_batch_p50_ms": card.best_batch_p50_ms,
        "best_batch_p95_ms": card.best_batch_p95_ms,
        "throughput": card.throughput,
        "memory_mb": card.memory_mb,
        "details": card.details,
        "measured_at": card.measured_at,
        "job": str(card.job.uuid) if card.job_id else None,
    }
