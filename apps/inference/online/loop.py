"""The worker side of online serving: a serving loop in each inference worker process.

``celery worker -Q inference.cpu`` (or ``inference.gpu``) starts one loop per pool process (``worker_process_init``;
with the solo or threads pool, one in the worker itself), serving the online queues of the inference queues the
worker consumes. A GPU worker runs one pool process per GPU, so one loop per GPU, sharing that process's session
cache with its durable jobs.

Each turn, the loop pops the oldest request (``BLPOP``), takes what else is waiting (``LPOP`` with a count) up to
the first request's ``max_batch_size``, and, only while it is busy (its previous batch held more than one request),
waits up to the request's ``max_delay_ms`` for the batch to fill: an idle loop runs a lone request at once. It marks
the requests taken (so that a caller whose loop died answers 503 at once, not at its timeout: the first in the round
trip that takes the others, those before they run), merges each version's compatible requests into one ONNX Runtime
call, and pushes each answer onto its request's reply key. In the same round trip as the answers it takes the next
batch's requests already waiting, marked taken (``ANSWER_AND_TAKE``): under load a batch costs one round trip after
its run. A request whose caller stopped waiting (its deadline passed) is dropped unrun.

Online serving is at most once: a request taken by a loop that dies is not run again; its caller answers 503 with
``Retry-After`` and the client retries. A heartbeat thread keeps ``alive:<loop>`` (3 s expiry) and the queue's set
of loops fresh every second; the web process reads the set to know a loop is up (else it takes the durable path).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

from apps.inference.online import messages
from apps.inference.online.link import RedisLink

logger = logging.getLogger(__name__)

BEAT_SECONDS = 1.0
ALIVE_SECONDS = 3
TAKEN_SECONDS = 120
REPLY_SECONDS = 60
VERSION_SECONDS = 2.0

# Answer a batch and take the next in one round trip. ARGV: how many requests to take from KEYS[1] (0: none), this
# loop's name, the taken marks' and the replies' expiry (s), the taken and reply keys' prefixes, then for each answer
# its request id, its reply and the key its deployment counts it on ('' for none; given back as gateway.RELEASE
# does: never below zero). A request taken is marked taken (its id read from the header's start, where the gateway
# writes it; a durable job's id message has none). Returns the requests taken. Keys other than the queue are named
# from ARGV: one Redis, not a cluster (as the rest of online serving).
ANSWER_AND_TAKE = """
local i = 7
while i <= #ARGV do
  local key = ARGV[6] .. ARGV[i]
  redis.call('RPUSH', key, ARGV[i + 1])
  redis.call('EXPIRE', key, ARGV[4])
  if ARGV[i + 2] ~= '' then
    if redis.call('DECR', ARGV[i + 2]) < 0 then redis.call('SET', ARGV[i + 2], 0) end
  end
  i = i + 3
end
local count = tonumber(ARGV[1])
if count < 1 or KEYS[1] == '' then return {} end
local taken = redis.call('LPOP', KEYS[1], count)
if not taken then return {} end
for _, message in ipairs(taken) do
  local id = string.match(message, '^{"id":"([%w]+)"')
  if id then redis.call('SET', ARGV[5] .. id, ARGV[2], 'EX', ARGV[3]) end
end
return taken
"""

_worker: dict[str, Any] = {"queues": frozenset(), "prefork": True}
_started: dict[int, ServingLoop] = {}


def enabled() -> bool:
    return bool(getattr(settings, "INFERENCE_ONLINE_SERVING", True)) and bool(getattr(settings, "REDIS_URL", None))


def note_worker(*, queues: set[str] | frozenset[str], prefork: bool) -> None:
    """What the worker consumes and how its pool runs (``celeryd_after_setup``, before the pool forks)."""
    _worker.update(queues=frozenset(queues), prefork=prefork)


def online_queues() -> list[str]:
    from apps.core.jobs import JobQueue

    served = (JobQueue.INFERENCE_CPU, JobQueue.INFERENCE_GPU)
    return [str(queue) for queue in served if queue in _worker["queues"]]


def start(*, in_pool_process: bool) -> ServingLoop | None:
    """Start this process's serving loop (once per process) when the worker consumes an inference queue."""
    if not enabled() or in_pool_process != bool(_worker["prefork"]):
        return None
    queues = online_queues()
    if not queues or os.getpid() in _started:
        return None
    loop = ServingLoop(queues)
    _started[os.getpid()] = loop
    loop.start()
    return loop


@dataclass
class Item:
    """One request taken off the queue."""

    header: dict[str, Any]
    inputs: dict[str, np.ndarray]
    marked: bool = False  # marked taken already (as it was taken)

    @property
    def id(self) -> str:
        return self.header["id"]


class ServingLoop:
    """The loop of one worker process (see the module docstring)."""

    def __init__(self, queues: list[str]) -> None:
        self.queues = queues
        self.keys = [messages.queue_key(queue) for queue in queues]
        self.name = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.stopped = threading.Event()
        self.busy = False
        self._versions: dict[int, tuple[float, Any]] = {}
        self._slots: dict[str, str | None] = {}  # the current batch's requests: where each counts in flight
        self._marked_upto = 0  # the current batch's first requests already marked taken
        self._largest = 1  # the current batch's most requests
        self._key: Any = None  # the queue the current batch came from
        self._prefetched: list[bytes] = []  # the next batch, taken as the previous one was answered
        # The current batch's metrics (``_observe_success``' arguments), recorded once its answers are on their way.
        self._observations: list[tuple[list[Item], str, int, float]] = []

    def start(self) -> None:
        threading.Thread(target=self._beat, name="online-beat", daemon=True).start()
        threading.Thread(target=self._serve_forever, name="online-serving", daemon=True).start()
        logger.info("Online serving loop %s serves %s", self.name, ", ".join(self.queues))

    def stop(self) -> None:
        self.stopped.set()

    def _redis(self) -> Any:
        import redis

        return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=None, socket_connect_timeout=2)

    def _link(self) -> RedisLink | None:
        try:
            return RedisLink(settings.REDIS_URL)
        except Exception as exc:  # Redis away: try again in a moment
            logger.warning("Online loop %s: Redis does not answer (%s); trying again.", self.name, exc)
            return None

    # --- heartbeat -------------------------------------------------------------------------------------------------
    def _beat(self) -> None:
        client = self._redis()
        while not self.stopped.is_set():
            try:
                now = time.time()
                with client.pipeline(transaction=False) as pipe:
                    pipe.set(messages.alive_key(self.name), "1", ex=ALIVE_SECONDS)
                    for queue in self.queues:
                        pipe.zadd(messages.loops_key(queue), {self.name: now})
                        pipe.zremrangebyscore(messages.loops_key(queue), "-inf", now - 60)
                    pipe.execute()
            except Exception as exc:  # Redis away: beat again when it is back
                logger.debug("Online loop %s could not beat: %s", self.name, exc)
            self.stopped.wait(BEAT_SECONDS)
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.delete(messages.alive_key(self.name))
                for queue in self.queues:
                    pipe.zrem(messages.loops_key(queue), self.name)
                pipe.execute()
        except Exception as exc:  # the entries expire by themselves
            logger.debug("Online loop %s could not withdraw: %s", self.name, exc)

    # --- taking requests -------------------------------------------------------------------------------------------
    def _serve_forever(self) -> None:
        client = None
        while not self.stopped.is_set() or self._prefetched:  # what it took, it serves before it stops
            if client is None:
                client = self._link()
                if client is None:
                    time.sleep(0.5)
                    continue
            try:
                batch = self._take(client)
            except Exception as exc:
                logger.warning("Online loop %s: the queue does not answer (%s); trying again.", self.name, exc)
                time.sleep(0.5)
                with contextlib.suppress(Exception):
                    client.close()
                client = None
                continue
            if not batch:
                continue
            try:
                self.serve(client, batch)
            except Exception:
                logger.exception("Online loop %s failed a batch of %d", self.name, len(batch))

    def _take(self, client: Any) -> list[bytes]:
        if self._prefetched:  # taken (and marked) in the round trip that answered the previous batch
            batch, self._prefetched = self._prefetched, []
            key = self._key
            header = _peek(batch[0])
            largest = max(1, int(header.get("max", 1)))
            self._marked_upto = len(batch)
        else:
            popped = client.blpop(self.keys, timeout=1)
            if popped is None:
                self.busy = False
                return []
            key, first = popped
            self._key = key
            header = _peek(first)
            largest = max(1, int(header.get("max", 1)))
            batch = [first]
            # One round trip takes what else waits and marks the first request taken (the others are marked before
            # they run, in ``serve``): a lone request costs two round trips before it runs, not three.
            self._marked_upto = 0
            commands: list[tuple] = []
            if largest > 1:
                commands.append(("LPOP", key, largest - 1))
            if "id" in header:
                commands.append(("SET", messages.taken_key(header["id"]), self.name, "EX", TAKEN_SECONDS))
                self._marked_upto = 1
            answers = client.many(commands)
            if largest > 1:
                batch += answers[0] or []
        self._largest = largest
        if largest > 1 and self.busy and len(batch) < largest:
            deadline = time.monotonic() + max(0, int(header.get("delay_ms", 0))) / 1000
            while len(batch) < largest:
                remaining = deadline - time.monotonic()
                if remaining <= 0.0005:
                    break
                more = client.blpop([key], timeout=remaining)
                if more is None:
                    break
                batch.append(more[1])
                if len(batch) < largest:
                    batch += client.call("LPOP", key, largest - len(batch)) or []
        self.busy = len(batch) > 1
        return batch

    # --- running them ------------------------------------------------------------------------------------------------
    def serve(self, client: Any, raw: list[bytes]) -> None:
        """Run the requests of one batch and answer each."""
        now = time.time()
        items, jobs = [], []
        for position, message in enumerate(raw):
            header, inputs = messages.unpack(message)
            if "job" in header:  # a durable prediction: its row holds the rest
                jobs.append(int(header["job"]))
            elif float(header.get("deadline", now + 1)) > now:  # past it, nobody waits for the answer any more
                items.append(Item(header, inputs, marked=position < self._marked_upto))
        self._marked_upto = 0
        if jobs:
            self.run_jobs(jobs)
        if not items:
            return
        self._slots = {item.id: item.header.get("slot") for item in items}
        unmarked = [item for item in items if not item.marked]
        if unmarked:
            client.many([("SET", messages.taken_key(item.id), self.name, "EX", TAKEN_SECONDS) for item in unmarked])
        replies: list[tuple[str, bytes]] = []
        by_version: dict[int, list[Item]] = {}
        for item in items:
            by_version.setdefault(int(item.header["version"]), []).append(item)
        try:
            for version_id, group in by_version.items():
                try:
                    replies += self._run_version(version_id, group)
                except Exception as exc:  # a bug or a lost database: the callers hear it now, not at their timeout
                    logger.exception("Online loop %s failed a batch of %d", self.name, len(group))
                    replies += [
                        (item.id, _failure(f"The worker failed: {type(exc).__name__}: {exc}")) for item in group
                    ]
            self._prefetched = self._push(client, replies, take=self._largest)
        finally:
            self._record_observations()

    def _record_observations(self) -> None:
        """The metrics of the runs just answered: after the answers were pushed, so that their callers do not
        wait for them (each observation keeps the time its run ended)."""
        observations, self._observations = self._observations, []
        for chunk, provider, total, ended in observations:
            _observe_success(chunk, provider, total, ended)

    def _push(self, client: Any, replies: list[tuple[str, bytes]], *, take: int = 0) -> list[bytes]:
        """Each answer onto its reply key, its request's place on its deployment given back (a request nobody waits
        for any more is given back by its caller instead) and, in the same round trip, up to ``take`` requests
        waiting in the queue the batch came from taken and marked taken (``ANSWER_AND_TAKE``): under load a batch
        costs one round trip after its run, not three (answer; then pop; then mark). Returns what it took."""
        args: list[Any] = [
            take if self._key else 0,
            self.name,
            TAKEN_SECONDS,
            REPLY_SECONDS,
            messages.taken_key(""),
            messages.reply_key(""),
        ]
        for request_id, reply in replies:
            args += [request_id, reply, self._slots.get(request_id) or ""]
        return list(client.script(ANSWER_AND_TAKE, [self._key or ""], args) or [])

    def run_jobs(self, job_ids: list[int]) -> None:
        """Claim the durable prediction jobs of one turn at once and run them as the broker's batches run
        (``serving.run_prediction_batch``: merged per version, recorded in bulk). A job another worker claimed
        first is skipped; one this loop claimed and could not finish is the reaper's (its heartbeat goes stale),
        as on the broker's way."""
        from django.db import close_old_connections

        from apps.core.job_services import claim_jobs
        from apps.inference import serving

        close_old_connections()
        try:
            claimed = claim_jobs(job_ids)
            if claimed:
                serving.run_prediction_batch(claimed)
        except Exception:
            logger.exception("Online loop %s failed %d durable jobs (the reaper's now)", self.name, len(job_ids))
            close_old_connections()

    def version(self, version_id: int) -> Any:
        """The version (cached in this process; a version that may still change is read again after 2 s)."""
        from django.db import close_old_connections

        from apps.marketplace.models import ModelVersion

        cached = self._versions.get(version_id)
        if cached is not None and (cached[1].is_frozen or time.monotonic() - cached[0] < VERSION_SECONDS):
            return cached[1]
        close_old_connections()
        version = ModelVersion.objects.select_related("model__organization").get(pk=version_id)
        if len(self._versions) > 1000:
            self._versions.clear()
        self._versions[version_id] = (time.monotonic(), version)
        return version

    def _run_version(self, version_id: int, group: list[Item]) -> list[tuple[str, bytes]]:
        from apps.inference.execution import load_version, prepare_inputs
        from apps.inference.serving import (
            InputRefused,
            _processing_errors,
            failure_reason,
            memory_failure,
            memory_message,
        )

        started = time.perf_counter()
        try:
            version = self.version(version_id)
            loaded = load_version(version, provider=group[0].header.get("provider") or "auto")
        except Exception as exc:
            _observe_failure(group, str(exc) or type(exc).__name__)
            return [(item.id, _failure(str(exc) or type(exc).__name__)) for item in group]
        replies: list[tuple[str, bytes]] = []
        ready: list[Item] = []
        for item in group:
            raw = item.header.get("raw")
            if raw is None:
                ready.append(item)
                continue
            try:
                item.inputs = prepare_inputs(loaded, arrays=None, raw=raw)
            except _processing_errors() as exc:
                refused = InputRefused(exc.errors)
                _observe_failure([item], str(refused), refused.errors)
                replies.append((item.id, _failure(str(refused), fields=refused.errors)))
                continue
            ready.append(item)
        for chunk in _chunks(ready, loaded):
            try:
                replies += self._run_chunk(chunk, loaded, started)
            except Exception as exc:
                if memory_failure(exc):
                    _observe_failure(chunk, memory_message())
                    replies += [(item.id, _failure(memory_message())) for item in chunk]
                    self._answer_now(replies)
                    self._record_observations()
                    from apps.inference.serving import replace_this_process

                    replace_this_process()
                    return []
                logger.warning("Online batch of %s failed: %s\n%s", version, exc, traceback.format_exc())
                limit = min(float(item.header.get("time_limit") or 60) for item in chunk)
                _observe_failure(chunk, failure_reason(exc, limit))
                replies += [(item.id, _failure(failure_reason(exc, limit))) for item in chunk]
        return replies

    def _answer_now(self, replies: list[tuple[str, bytes]]) -> None:
        link = RedisLink(settings.REDIS_URL)
        try:
            self._push(link, replies, take=0)
        finally:
            link.close()

    def _run_chunk(self, chunk: list[Item], loaded: Any, started: float) -> list[tuple[str, bytes]]:
        from apps.inference.execution import run_version
        from apps.inference.runtime.codecs import split_outputs
        from apps.inference.runtime.validation import merge_batch, split_batch

        now = time.time()
        time_limit = max(0.05, min(_time_limit(item, now) for item in chunk))
        names = {entry["name"] for entry in loaded.signature.get("inputs", [])}
        ran_at = time.perf_counter()
        if len(chunk) == 1:
            ran = run_version(loaded, chunk[0].inputs, time_limit=time_limit, readable=True)
            parts, total = [ran.outputs], _first_dim(chunk[0].inputs)
            answers = [ran.answer]
        else:
            merged, sizes = merge_batch([item.inputs for item in chunk], pad="attention_mask" in names)
            ran = run_version(loaded, merged, time_limit=time_limit)
            parts, total = split_batch(ran.outputs, sizes), sum(sizes)
            answers = [loaded.processor.postprocess(part, item.inputs) for part, item in zip(parts, chunk, strict=True)]
        batch_ms = round((time.perf_counter() - ran_at) * 1000, 3)
        worker_ms = round((time.perf_counter() - started) * 1000, 3)
        replies = []
        for item, outputs, answer in zip(chunk, parts, answers, strict=True):
            chosen = item.header.get("outputs")
            if chosen is not None:
                outputs = {name: value for name, value in outputs.items() if name in chosen}
            tensors, others = split_outputs(outputs)
            header: dict[str, Any] = {
                "status": "succeeded",
                "provider": ran.provider,
                "batch_size": int(total),
                "timings": {"batch_ms": batch_ms, "worker_ms": worker_ms, **ran.timings},
                "worker": self.name,
            }
            if others:
                header["other_outputs"] = others
            if answer is not None:
                header["answer"] = answer
            replies.append((item.id, messages.pack(header, tensors)))
        self._observations.append((chunk, ran.provider, int(total), time.time()))
        return replies


def _observe_success(chunk: list[Item], provider: str, total: int, ended: float) -> None:
    """Prometheus, as for durable predictions (apps/inference/metrics.py): latency by what ran (from each request's
    sending to ``ended``, when its run ended), batch fill."""
    from apps.core import metrics as portal_metrics
    from apps.inference import metrics

    try:
        first = chunk[0].header
        model, version = metrics.version_names(int(first["version"]))
        deployment = metrics.deployment_name(first.get("deployment"))
        now = ended
        for item in chunk:
            portal_metrics.inference_finished(
                model=model,
                version=version,
                deployment=deployment,
                provider=provider,
                batch_size=total,
                seconds=max(0.0, now - float(item.header.get("sent", now))),
            )
        if first.get("deployment") is not None:
            portal_metrics.inference_batch(
                deployment=deployment, items=len(chunk), max_batch_size=int(first.get("max", 1))
            )
    except Exception:  # a metric never fails a prediction
        logger.warning("Could not record the metrics of an online batch", exc_info=True)


def _observe_failure(items: list[Item], error: str, fields: dict | None = None) -> None:
    from apps.core import metrics as portal_metrics
    from apps.inference import metrics

    try:
        for item in items:
            model, _version = metrics.version_names(int(item.header["version"]))
            deployment = metrics.deployment_name(item.header.get("deployment"))
            reason = metrics.failure_reason(error, fields)
            portal_metrics.inference_failed(model=model, deployment=deployment, reason=reason)
    except Exception:
        logger.warning("Could not record the metrics of a failed online request", exc_info=True)


def _chunks(items: list[Item], loaded: Any) -> list[list[Item]]:
    """Groups of requests that merge into one run (same inputs, dtypes and ranks; other dimensions equal unless the
    model takes an attention mask), each at most the request's ``max`` items; one request per run when the model
    has no batch axis."""
    from apps.inference.runtime.validation import batch_axis, mergeable

    if not batch_axis(loaded.signature):
        return [[item] for item in items]
    pad = "attention_mask" in {entry["name"] for entry in loaded.signature.get("inputs", [])}
    chunks: list[list[Item]] = []
    for item in items:
        largest = max(1, int(item.header.get("max", 1)))
        for chunk in chunks:
            if len(chunk) < largest and mergeable(chunk[0].inputs, item.inputs, pad=pad):
                chunk.append(item)
                break
        else:
            chunks.append([item])
    return chunks


def _time_limit(item: Item, now: float) -> float:
    """How long a request's run may take: its deployment's time limit, and no longer than its caller waits."""
    own = float(item.header.get("time_limit") or 60)
    return min(own, float(item.header.get("deadline", now + own)) - now)


def _first_dim(inputs: dict[str, np.ndarray]) -> int:
    first = next(iter(inputs.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


def _peek(message: bytes) -> dict[str, Any]:
    return messages.load_header(message.partition(b"\n")[0])


def _failure(error: str, *, fields: dict | None = None) -> bytes:
    header: dict[str, Any] = {"status": "failed", "error": error}
    if fields:
        header["errors"] = fields
    return messages.pack(header)
