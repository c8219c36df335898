"""EXPERIMENT: what the predict lane (apps/inference/api/predict_lane.py) saves, measured against its own off switch.

The batching deployment of benchmarks/inference.py (MiniLM int8, the same inputs, the same worker and gunicorn
settings), served alternately with ``INFERENCE_PREDICT_LANE=false`` (every request takes the route: URL resolution,
the rest of the middleware, DRF's dispatch) and ``true`` (requests whose token and run decision the process holds
take the lane). For each: concurrency 1 (p50), concurrency 32 online (items/s, share of raw ORT's best batch, CPU
per request by role) and the durable path at concurrency 32 (asynchronous requests, job rows). Not part of
``make bench`` nor of RESULTS.md's generated sections; its figures are quoted by hand.

    .venv/bin/python benchmarks/experiments/predict_lane.py --rounds 2 --requests 1500
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import inference as bench  # noqa: E402 - benchmarks/inference.py: its setup, load and CPU accounting
from support import HttpClient  # noqa: E402

SETTINGS = {"route": {"INFERENCE_PREDICT_LANE": "false"}, "lane": {"INFERENCE_PREDICT_LANE": "true"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two applications")
    parser.add_argument("--requests", type=int, default=1500, help="requests at concurrency 32, per phase")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gpux_bench_lane")
    workdir = Path(tempfile.mkdtemp(prefix="gpux-bench-lane-"))
    env = bench.environment(workdir)
    os.environ["PYTHONPATH"] = f"{env['PYTHONPATH']}:{HERE}"
    bench.recreate_database(env["DATABASE_URL"])
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    call_command("migrate", interactive=False, verbosity=0)
    minilm, _iris, token, deployment_url, _version_url, _iris_url = bench.prepare(workdir)
    inputs = bench.minilm_inputs()
    body = json.dumps({"inputs": inputs, "outputs": []}).encode()
    raw = bench.raw_ort(minilm, inputs, runs=300)
    best = raw["throughput"][raw["best_batch"]]
    bench.log(f"raw ORT: p50 {raw['latency']['p50']:.2f} ms, best batch {raw['best_batch']}: {best:.0f} items/s")
    logs = workdir / "logs"
    logs.mkdir()
    celery = str(Path(sys.executable).parent / "celery")
    worker = bench.start_process(
        [celery, "-A", "gpux_portal", "worker", "-Q", "inference.cpu", "-P", "prefork", "--concurrency", "1",
         "--prefetch-multiplier", "64", "--without-heartbeat", "--without-gossip", "--without-mingle",
         "-n", "bench-lane@%h", "--loglevel", "WARNING"],
        logs / "worker.log",
        {"GPUX_INFERENCE_THREADS": "2"},
    )  # fmt: skip
    roles = bench.cpu_roles(env["DATABASE_URL"])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    clients: dict[str, HttpClient] = {}

    def post(base: str):
        client = clients.setdefault(base, HttpClient(base))

        def call() -> None:
            status, answer = client.post(deployment_url, body, headers)
            if status != 200:
                raise SystemExit(f"HTTP {status} {answer[:300]!r}")

        return call

    try:
        for round_ in range(args.rounds):
            for name, settings in SETTINGS.items():
                port = bench.free_port()
                web = bench.start_process(
                    [sys.executable, "-m", "gunicorn", "bench_wsgi:application", "-b", f"127.0.0.1:{port}", "-w",
                     "2", "-k", "gthread", "--threads", "24", "--log-level", "warning"],
                    logs / f"web-{name}-{round_}.log",
                    settings,
                )  # fmt: skip
                base = f"http://127.0.0.1:{port}"
                try:
                    bench.wait_for(lambda base=base: post(base)() is None, 120, f"{name} to answer")
                    bench.load(post(base), 8, 200)  # warm: both processes, their threads and decisions
                    single = bench.load(post(base), 1, 500, roles)
                    many = bench.load(post(base), 32, args.requests, roles)
                    durable = bench.durable_load(
                        clients[base], f"{deployment_url}?async=1", body, headers, 32, args.requests, roles
                    )
                finally:
                    web.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        web.wait(timeout=20)
                cpu = " / ".join(f"{many['cpu_ms'][role]:.2f}" for role in roles)
                durable_cpu = " / ".join(f"{durable['cpu_ms'][role]:.2f}" for role in roles)
                print(
                    f"round {round_ + 1} {name:5s} concurrency 1: p50 {single['p50']:.2f} ms "
                    f"(raw ORT + {single['p50'] - raw['latency']['p50']:.2f}); concurrency 32 online: "
                    f"{many['throughput']:.0f} items/s, {many['throughput'] / best:.2f} of raw ORT's best batch, "
                    f"CPU ms per request web / worker / database / redis {cpu}; durable: "
                    f"{durable['throughput']:.0f} items/s, {durable['throughput'] / best:.2f}, CPU {durable_cpu}",
                    flush=True,
                )
    finally:
        worker.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=20)
        bench.recreate_database(env["DATABASE_URL"], drop_only=True)


if __name__ == "__main__":
    main()
