"""Inference jobs on the ``inference.cpu`` and ``inference.gpu`` queues.

* ``inference.predict``: one prediction per message (a ``JobTask``).
* ``inference.predict_batched``: predictions of deployments with dynamic batching, built on celery-batches: the
  worker's consumer buffers their messages and hands them to the pool as one list, which is run as merged
  batches (apps/inference/serving.py). ``DeploymentBatches`` adds what celery-batches lacks for inference: a
  batch is only handed over when a pool process is free (while one runs, new requests gather into the next
  batch instead of queueing as many small ones), and each deployment's own ``max_batch_size`` and
  ``max_delay_ms`` decide when its requests go.
* ``inference.deliver_webhook``: one delivery attempt of a finished job's webhook, retried with backoff.

Inference workers run the prefork pool with one process per GPU (``CUDA_VISIBLE_DEVICES`` pins it) or per CPU
worker, ``--prefetch-multiplier`` high enough to buffer a batch (docs/operator/inference.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from celery import shared_task, signals
from celery_batches import Batches, SimpleRequest

from apps.core.job_services import claim_job, claim_jobs, register_job_kind
from apps.core.jobs import Job, JobQueue
from apps.core.tasks import JobTask, register_job_task
from apps.inference import serving
from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND

logger = logging.getLogger(__name__)
GPU_BEAT_SECONDS = 10


class Predict(JobTask):
    """One prediction (apps/inference/serving.py ``run_prediction``)."""

    name = "inference.predict"
    kind = PREDICT_KIND
    label = "Prediction"
    creator_keeps_access = True  # a prediction stays its creator's own (docs/api/jobs.md)
    job_queue = JobQueue.INFERENCE_CPU
    max_attempts = 2
    job_time_limit = 60
    progress_interval = 60.0
    audit_creation = False  # predictions are Job rows, not audit events

    def run(self, job_id: int, **kwargs: Any) -> str:
        job = claim_job(job_id)
        if job is None:
            return "skipped"
        return serving.run_prediction(job)


predict = register_job_task(Predict)


class DeploymentBatches(Batches):
    """celery-batches' buffering, flushed per deployment when a pool process is free.

    Each message carries ``batch = {"key": <deployment>, "max": <max_batch_size>, "delay_ms": <max_delay_ms>}``.
    Every ``flush_interval`` the buffer is looked at: a deployment's requests go as one batch when they reach its
    ``max`` or the oldest has waited its ``delay_ms``; nothing goes while every pool process is busy.
    """

    abstract = True
    flush_every = 1_000_000  # never by count alone: _do_flush decides
    flush_interval = 0.002

    def __init__(self) -> None:
        super().__init__()
        self._waiting: OrderedDict[Any, list[tuple[float, Any]]] = OrderedDict()
        self._in_flight = 0

    def _pool_limit(self) -> int:
        return max(1, int(getattr(self._pool, "limit", 1) or 1))

    def _do_flush(self) -> None:
        now = time.monotonic()
        from celery_batches import consume_queue

        for request in consume_queue(self._buffer):
            batch = (request.kwargs or {}).get("batch") or {}
            key = batch.get("key") or request.id
            self._waiting.setdefault(key, []).append((now, request))
        for key in list(self._waiting):
            if self._in_flight >= self._pool_limit():
                return
            items = self._waiting[key]
            batch = (items[0][1].kwargs or {}).get("batch") or {}
            largest = max(1, int(batch.get("max", 1)))
            delay = max(0.0, float(batch.get("delay_ms", 0))) / 1000
            if len(items) < largest and now - items[0][0] < delay:
                continue
            chunk, rest = items[:largest], items[largest:]
            if rest:
                self._waiting[key] = rest
            else:
                del self._waiting[key]
            self.flush([request for _, request in chunk])
        if not self._waiting and self._buffer.qsize() == 0 and self._in_flight == 0 and self._tref is not None:
            self._tref.cancel()
            self._tref = None

    def flush(self, requests: list[Any]) -> Any:
        from celery_batches.trace import apply_batches_task

        serializable = ([SimpleRequest.from_request(request) for request in requests],)
        self._in_flight += 1

        def done(result: Any = None) -> None:
            self._in_flight = max(0, self._in_flight - 1)
            for request in requests:
                request.acknowledge()
            if self._waiting:
                self._do_flush()  # the next batch gathered while this one ran: send it now, not at the next tick

        def failed(*args: Any, **kwargs: Any) -> None:
            # The process died mid-batch: the messages stay unacknowledged and the reaper re-sends their jobs.
            self._in_flight = max(0, self._in_flight - 1)

        return self._pool.apply_async(
            apply_batches_task, (self, serializable, 0, None), callback=done, error_callback=failed
        )


class PredictBatched(DeploymentBatches):
    """Predictions of a batching deployment: claim the jobs of one flushed batch, run them merged."""

    name = "inference.predict_batched"
    kind = BATCHED_PREDICT_KIND
    label = "Prediction"
    creator_keeps_access = True  # a prediction stays its creator's own (docs/api/jobs.md)
    job_queue = JobQueue.INFERENCE_CPU
    max_attempts = 2
    job_time_limit = 60
    # What the job registry asks of every kind (apps/core/tasks.py JobTask): people never start these by hand.
    user_startable = False
    organization_action = JobTask.organization_action
    required_scope = JobTask.required_scope
    clean_params = JobTask.clean_params
    audit_creation = False
    acks_late = True
    ignore_result = True
    serializer = "json"

    def run(self, requests: list[SimpleRequest]) -> dict[str, int]:
        jobs = claim_jobs([request.args[0] for request in requests])
        if not jobs:
            return {"succeeded": 0, "failed": 0, "batches": 0}
        return serving.run_prediction_batch(jobs)

    def message_kwargs(self, job: Job) -> dict[str, Any]:
        return {"batch": job.params.get("batch") or {"key": str(job.uuid), "max": 1, "delay_ms": 0}}

    def deliver(self, job: Job) -> bool:
        """While a serving loop is up for the job's queue, hand it the job's id through its Redis list (one push,
        no broker message): the loop claims and runs the jobs it takes in bulk, beside online requests
        (apps/inference/online/loop.py). False (the broker's way) when none is up."""
        from apps.inference.online import gateway

        if not gateway.online_available(job.queue):
            return False
        return gateway.push_job(job.queue, job.pk, self.message_kwargs(job)["batch"])


def _register_batched() -> Any:
    from gpux_portal.celery import app

    task = app.register_task(PredictBatched())
    register_job_kind(task)
    return task


predict_batched = _register_batched()


@shared_task(name="inference.deliver_webhook", ignore_result=True, acks_late=True, bind=True)
def deliver_webhook(self, job_id: int, attempt: int = 1) -> str:
    """One delivery attempt of a finished job's webhook; the next attempt is scheduled on failure."""
    from apps.inference.webhooks import deliver

    return deliver(job_id, attempt)


@signals.celeryd_after_setup.connect
def note_the_worker(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    """Remember the pool size and queues (after ``-Q`` applied, before the pool starts): the default memory
    limit of the pool's processes depends on them (``apps.inference.worker_memory``)."""
    from apps.inference import worker_memory

    if instance is None:
        return
    queues = set(getattr(instance.app.amqp.queues, "consume_from", {}) or {})
    worker_memory.note_worker(processes=getattr(instance, "concurrency", 1) or 1, queues=queues)
    from apps.inference.online import loop

    pool = getattr(instance, "pool_cls", None)
    pool_name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    loop.note_worker(queues=queues, prefork="prefork" in str(pool_name))


@signals.worker_ready.connect
def start_online_serving_in_worker(sender: Any = None, **kwargs: Any) -> None:
    """With the solo or threads pool (no pool processes), the worker itself runs the online serving loop."""
    from apps.inference.online import loop

    loop.start(in_pool_process=False)


@signals.worker_process_init.connect
def limit_worker_memory(**kwargs: Any) -> None:
    """Cap a pool process's address space (``apps.inference.worker_memory``): an allocation past it fails the
    job with a clear reason instead of taking the host down, and the pool replaces the process."""
    from apps.inference import worker_memory

    worker_memory.apply_limit()


# After the memory limit (receivers run in the order they connect): the loop starts under it.
@signals.worker_process_init.connect
def start_online_serving_in_pool_process(**kwargs: Any) -> None:
    """Each prefork pool process of an inference worker runs an online serving loop (apps/inference/online/loop.py):
    one per GPU on a GPU worker; a process the pool replaces starts its own."""
    from apps.inference.online import loop

    loop.start(in_pool_process=True)


@signals.worker_ready.connect
def announce_gpu(sender: Any = None, **kwargs: Any) -> None:
    """A worker consuming ``inference.gpu`` on a host with a GPU says so, so that jobs are routed to it."""
    from apps.inference.routing import announce_gpu_worker
    from apps.inference.runtime.providers import has_gpu

    consumer = getattr(sender, "consumer", None) or sender
    queues = {queue.name for queue in getattr(getattr(consumer, "task_consumer", None), "queues", [])}
    if JobQueue.INFERENCE_GPU not in queues or not has_gpu():
        return
    name = getattr(sender, "hostname", "gpu-worker")

    def beat() -> None:
        try:
            announce_gpu_worker(name)
        except Exception:  # Redis away for a moment: the next beat tries again
            logger.warning("Could not announce GPU worker %s", name, exc_info=True)
        timer = threading.Timer(GPU_BEAT_SECONDS, beat)
        timer.daemon = True
        timer.start()

    beat()


__all__ = ["deliver_webhook", "predict", "predict_batched"]

# Job kinds of their own modules, registered with the worker through this one (Celery imports ``tasks``).
from apps.inference import batch_tasks, performance_tasks, pipeline_tasks  # noqa: E402, F401
