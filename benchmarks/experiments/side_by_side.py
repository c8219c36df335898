"""EXPERIMENT: two checkouts of the portal served side by side, their load phases alternating, to judge a change on a
machine whose speed drifts.

On the shared 2-core machine the same code read 898 and 1,432 web-floor requests/s minutes apart (2026-12-07), more
than most changes move it. Here each checkout (``--a``, ``--b``: a git worktree or any copy of the repository, each
with this repository's virtual environment) gets its own database, Redis database, gunicorn (as
benchmarks/inference.py starts it: 2 gthread processes of 24 threads) and inference worker. Both run all along; the
phases alternate A then B, then B then A, so both sides see the same stretch of the machine. For each route and side:
requests/s, p50 and the CPU per request of that side's gunicorn and worker process trees; and each round's share of
the side's own web floor. Not part of ``make bench`` nor of RESULTS.md's generated sections; its figures are quoted
by hand.

    git worktree add /tmp/base <commit>
    .venv/bin/python benchmarks/experiments/side_by_side.py --a /tmp/base --b . --rounds 6

Routes (``--routes``): ``floor`` (``GET /bench/floor``), ``user`` (``GET /api/v1/user/`` with a token), ``iris`` (the
iris classifier's version predict route, online) and ``minilm`` (the batching deployment). ``--extra-env-b`` passes
settings to side B's processes only (JSON), to compare a setting rather than code.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def serve_side(root: Path) -> None:
    """One side (a subprocess, ``--serve``): set up, start, print where it listens, serve until its stdin ends."""
    sys.path[:0] = [str(root / "benchmarks"), str(root)]
    import inference as bench  # that checkout's benchmarks/inference.py: its setup, as the benchmark does it
    from support import free_port, recreate_database

    workdir = Path(tempfile.mkdtemp(prefix="gpux-side-"))
    env = bench.environment(workdir)
    recreate_database(env["DATABASE_URL"])
    import django

    django.setup()
    import redis
    import requests
    from django.core.management import call_command

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    call_command("migrate", interactive=False, verbosity=0)
    _minilm, _iris, token, deployment_url, _version_url, iris_url = bench.prepare(workdir)
    python = sys.executable
    celery = str(Path(python).parent / "celery")
    worker = bench.start_process(
        [celery, "-A", "gpux_portal", "worker", "-Q", "inference.cpu", "-P", "prefork", "--concurrency", "1",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"side-{os.getpid()}@%h",
         "--loglevel", "WARNING"],
        workdir / "worker.log",
        {"GPUX_INFERENCE_THREADS": "2"},
    )  # fmt: skip
    port = free_port()
    web = bench.start_process(
        [python, "-m", "gunicorn", "bench_wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "2",
         "-k", "gthread", "--threads", "24", "--log-level", "warning"],
        workdir / "web.log",
        {},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        bench.wait_for(lambda: requests.get(f"{base}/healthz", timeout=1).status_code == 200, 60, "gunicorn")
        where = {"base": base, "token": token, "iris": iris_url, "minilm": deployment_url, "web": web.pid}
        print("SIDE " + json.dumps({**where, "worker": worker.pid}), flush=True)
        sys.stdin.read()
    finally:
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            process.wait(timeout=30)
        recreate_database(env["DATABASE_URL"], drop_only=True)


def start_side(root: Path, number: int, extra_env: dict[str, str]) -> tuple[subprocess.Popen, dict]:
    env = {
        **os.environ,
        **extra_env,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/gpux_side_by_side_{number}",
        "BENCH_REDIS_URL": f"redis://127.0.0.1:6379/{10 + number}",
    }
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    for line in process.stdout:
        if line.startswith("SIDE "):
            return process, json.loads(line[5:])
    raise SystemExit(f"side {root} did not start (exit {process.wait()})")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--a", type=Path, help="checkout A (the baseline)")
    parser.add_argument("--b", type=Path, help="checkout B (the change)")
    parser.add_argument("--routes", default="floor,user,iris")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--per-thread", type=int, default=50, help="requests per client thread and phase")
    parser.add_argument("--extra-env-b", default="{}", help="JSON: settings for side B's processes only")
    args = parser.parse_args()
    if args.serve:
        serve_side(Path(args.serve).resolve())
        return
    if args.a is None or args.b is None:
        parser.error("--a and --b are required")
    sys.path.insert(0, str(HERE.parent))
    from inference import load, minilm_inputs
    from support import HttpClient, family

    sides = {
        "A": start_side(args.a.resolve(), 1, {}),
        "B": start_side(args.b.resolve(), 2, json.loads(args.extra_env_b)),
    }
    bodies = {
        "iris": json.dumps({"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}).encode(),
        "minilm": json.dumps({"inputs": minilm_inputs(), "outputs": []}).encode(),
    }

    def calls(where: dict):
        client = HttpClient(where["base"])
        headers = {"Authorization": f"Bearer {where['token']}", "Content-Type": "application/json"}

        def checked(answer: tuple[int, bytes]) -> None:
            if answer[0] != 200:
                raise SystemExit(f"HTTP {answer[0]}: {answer[1][:300]!r}")

        return {
            "floor": lambda: checked(client.get("/bench/floor")),
            "user": lambda: checked(client.get("/api/v1/user/", headers)),
            "iris": lambda: checked(client.post(where["iris"], bodies["iris"], headers)),
            "minilm": lambda: checked(client.post(where["minilm"], bodies["minilm"], headers)),
        }

    routes = args.routes.split(",")
    results: dict[str, dict[str, list[tuple[float, float, float, float]]]] = {
        side: {route: [] for route in routes} for side in sides
    }
    try:
        callers = {side: calls(where) for side, (_process, where) in sides.items()}
        for side in sides:  # the serving loop is up once a prediction is answered
            bench_wait(lambda side=side: callers[side]["iris"]() is None)
        total = args.concurrency * args.per_thread
        for number in range(args.rounds):
            order = ["A", "B"] if number % 2 == 0 else ["B", "A"]
            line = []
            for route in routes:
                for side in order:
                    where = sides[side][1]
                    web, worker = family(where["web"]), family(where["worker"])
                    before = cpu_seconds(web), cpu_seconds(worker)
                    figures = load(callers[side][route], args.concurrency, total)
                    count = figures["n"]
                    web_ms = (cpu_seconds(web) - before[0]) * 1000 / count
                    worker_ms = (cpu_seconds(worker) - before[1]) * 1000 / count
                    results[side][route].append((figures["throughput"], figures["p50"], web_ms, worker_ms))
                    line.append(f"{route} {side} {figures['throughput']:.0f}/s web {web_ms:.2f} worker {worker_ms:.2f}")
            print(f"round {number + 1}: " + " | ".join(line), flush=True)
    finally:
        for process, _where in sides.values():
            process.stdin.close()
        for process, _where in sides.values():
            process.wait(timeout=120)
    print("\nmedians: route, side, requests/s, p50 ms, web CPU ms, worker CPU ms per request")
    for route in routes:
        for side in sides:
            rows = results[side][route]
            medians = [statistics.median(row[column] for row in rows) for column in range(4)]
            print(f"{route} {side}: {medians[0]:.0f}/s, {medians[1]:.2f} ms, {medians[2]:.2f}, {medians[3]:.2f}")
    if "floor" in routes:
        print("\nshares of the side's own web floor, each round, then the median")
        for route in (route for route in routes if route != "floor"):
            for side in sides:
                pairs = zip(results[side][route], results[side]["floor"], strict=True)
                shares = [row[0] / floor[0] for row, floor in pairs]
                print(f"{route} {side}: {' '.join(f'{x:.2f}' for x in shares)}; median {statistics.median(shares):.2f}")


def bench_wait(predicate) -> None:
    import time

    for _ in range(120):
        try:
            if predicate():
                return
        except (SystemExit, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit("a side's serving loop never answered")


if __name__ == "__main__":
    main()
