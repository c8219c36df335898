"""Registry sync at scale: an HTTP index of 100,000 models from loopback into PostgreSQL, and the scheduler's tick.

    .venv/bin/python benchmarks/registry_sync.py                 # about 2-3 minutes on 2 cores
    .venv/bin/python benchmarks/registry_sync.py --models 20000 --results ''   # a quick run, no RESULTS.md

Needs PostgreSQL (``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/gpux_bench_registry_sync``):
the database is dropped and created again at the start of every run, then migrated, so each run syncs into
an empty portal and runs compare (``--keep-database`` leaves it at the end; it is dropped otherwise). What it
does, in one run:

1. writes JSON Lines indexes (one version and one file per model, with size and SHA-256) of ``--small`` (20,000)
   and ``--models`` (100,000) models and serves them with ``python -m http.server`` on 127.0.0.1;
2. **baseline A**, the ceiling: the HTTP-index backend alone reading the large index (HTTP, JSON, data classes;
   no database);
3. **baseline B**, what bulk upserts replace: a model, its link, version and remote file written one model at a
   time through the ORM (``--naive`` models, 2,000 by default);
4. **the portal's sync**: the registry sync job's own task code (``registries.sync_registry``, exactly what a
   worker runs, minus the broker) in a fresh process per run, for the small and the large index, each synced
   twice (the second time nothing changed); each run reports its wall time and the process's peak RSS over its
   RSS just before the sync (``ru_maxrss`` against ``VmRSS``);
5. **the scheduler**: 1,000 registries in 100 organizations; the tick (``start_due_syncs``) timed with none due,
   with an hour's share due (registries on hourly schedules, spread over the hour), and with every one due at
   once (the tick starts at most ``--tick-limit`` per run; the rest wait for the next tick).

Targets (issue #5): at least 5,000 models/s; memory flat in the number of models; a second sync with nothing
changed at least 5 times faster than the first; the scheduler's tick under 1 second with 1,000 registries.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import update_section
from support import free_port, log, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gpux_bench_registry_sync"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
PAGE_SIZE = int(os.environ.get("BENCH_PAGE_SIZE", "1000"))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
RESULTS_BEGIN = "<!-- benchmarks/registry_sync.py: begin (generated, do not edit by hand) -->"
RESULTS_END = "<!-- benchmarks/registry_sync.py: end -->"
RUN_NAMES = {
    "first": "first run (every model new)",
    "second": "second run, nothing changed (the index's Last-Modified says so: not read)",
    "re-read": "third run, nothing changed but the file touched (read in full, compared model by model)",
}


def environment(workdir: Path) -> dict[str, str]:
    env = {
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        "DJANGO_SETTINGS_MODULE": "gpux_portal.settings",
        "DJANGO_ENV": "test",
        "GPUX_VAR_DIR": str(workdir / "var"),
        "MEDIA_ROOT": str(workdir / "var" / "media"),
        "GPUX_REGISTRY_ALLOWED_NETWORKS": "127.0.0.1/32",
        "LOG_LEVEL": "WARNING",
        "CELERY_SKIP_CHECKS": "1",
    }
    (workdir / "var" / "media").mkdir(parents=True, exist_ok=True)
    # A Redis database of its own as the broker (flushed at the end): nothing consumes the jobs queued here.
    env["REDIS_URL"] = env["CELERY_BROKER_URL"] = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    os.environ.update(env)
    return env


def write_index(path: Path, count: int, *, seed: str) -> None:
    """``count`` models, one version and one file each, with size and SHA-256 (the files are not served)."""
    with path.open("w") as out:
        out.write(json.dumps({"gpux_index": 1, "name": f"benchmark {count}"}) + "\n")
        for number in range(count):
            model_id = f"bench/{seed}-model-{number:07d}"
            digest = hashlib.sha256(model_id.encode()).hexdigest()
            entry = {
                "id": model_id,
                "name": f"model {number}",
                "summary": f"Benchmark model number {number}",
                "task": "text-classification",
                "tags": ["benchmark", "onnx"],
                "license": "apache-2.0",
                "fingerprint": digest[:16],
                "versions": [
                    {
                        "label": "1",
                        "aliases": ["latest"],
                        "files": [{"path": "model.onnx", "size": 1024, "sha256": digest}],
                    }
                ],
            }
            out.write(json.dumps(entry, separators=(",", ":")) + "\n")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- the child: run one sync job's task code in a fresh process ---------------------------------------------------
def child_sync(job_id: int) -> None:
    import django

    django.setup()
    from apps.core.jobs import Job
    from apps.registries.tasks import sync_registry

    before = rss_kib()
    started = time.perf_counter()
    outcome = sync_registry.run(job_id)
    seconds = time.perf_counter() - started
    job = Job.objects.get(pk=job_id)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "outcome": outcome,
                "status": job.status,
                "error": job.error,
                "result": job.result,
                "seconds": seconds,
                "rss_before_kib": before,
                "peak_kib": peak,
            }
        )
    )


def run_sync_in_child(registry, owner) -> dict:
    from apps.registries.services import start_sync

    sync = start_sync(registry=registry, actor=owner)
    done = subprocess.run(
        [sys.executable, __file__, "--child-sync", str(sync.job_id)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the sync process failed:\n{done.stdout}\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["status"] != "succeeded":
        raise SystemExit(f"the sync failed: {report['error']}")
    return report


# --- baselines ------------------------------------------------------------------------------------------------------
def baseline_listing(url: str) -> tuple[int, float]:
    from apps.registries.backends.http_index import HttpIndexBackend
    from apps.registries.sdk import BackendContext, NetworkPolicy

    backend = HttpIndexBackend(
        {"url": url, "page_size": 1000, "format": "jsonl", "token": None},
        context=BackendContext(policy=NetworkPolicy(allowed=("127.0.0.1/32",))),
    )
    started = time.perf_counter()
    count = sum(len(page.models) for page in backend.iter_models(None))
    seconds = time.perf_counter() - started
    backend.close()
    return count, seconds


def baseline_naive(organization, registry, count: int) -> float:
    """One model at a time: what the bulk writes replace (rows are deleted afterwards)."""
    from django.db import transaction

    from apps.marketplace.models import Model, ModelVersion, VersionStatus
    from apps.registries.models import RegistryModel, RemoteFile

    started = time.perf_counter()
    for number in range(count):
        with transaction.atomic():
            model = Model.objects.create(
                organization=organization,
                name=f"naive-{number}",
                summary=f"Benchmark model number {number}",
                task="text-classification",
                tags=["benchmark", "onnx"],
                license="apache-2.0",
                source_registry=registry.slug,
                external_id=f"naive/{number}",
            )
            RegistryModel.objects.create(registry=registry, model=model, external_id=f"naive/{number}")
            version = ModelVersion.objects.create(model=model, label="1", status=VersionStatus.PUBLISHED)
            RemoteFile.objects.create(version=version, path="model.onnx", size=1024, sha256="0" * 64)
    seconds = time.perf_counter() - started
    Model.objects.filter(organization=organization, name__startswith="naive-").delete()
    return seconds


def scheduler_ticks(owner, tick_limit: int) -> dict[str, tuple[float, int]]:
    from django.utils import timezone

    from apps.organizations.services import create_organization
    from apps.registries.models import Registry
    from apps.registries.services import start_due_syncs, start_scheduled_sync_of

    tag = secrets.token_hex(3)
    organizations = [
        create_organization(creator=owner, slug=f"sched-{tag}-{number:03d}", name=f"Scheduler org {number}")
        for number in range(100)
    ]
    now = timezone.now()
    rows = []
    for number in range(1000):
        # Hourly schedules, spread over the hour: the share due at a tick is about 1000/60.
        rows.append(
            Registry(
                organization=organizations[number % 100],
                slug=f"r{number:04d}",
                name=f"Registry {number}",
                backend="example-catalog",
                config={"page_size": 2, "tag": None},
                sync_interval_minutes=60,
                next_sync_at=now + dt.timedelta(seconds=number * 3.6),
            )
        )
    Registry.objects.bulk_create(rows)
    mine = Registry.objects.filter(organization__in=organizations)
    results = {}
    for name, when, prepare in (
        ("none due", now - dt.timedelta(seconds=1), None),
        ("one minute's share due", now + dt.timedelta(seconds=60), None),
        ("all 1,000 due at once", now + dt.timedelta(minutes=2), lambda: mine.update(next_sync_at=now)),
    ):
        if prepare:
            prepare()
        started = time.perf_counter()
        queued = start_due_syncs(now=when, limit=tick_limit)
        results[name] = (time.perf_counter() - started, len(queued))
        if name == "one minute's share due":
            # What each queued start then costs in its task (writing the sync's job): informational.
            started = time.perf_counter()
            for registry_id in queued:
                start_scheduled_sync_of(registry_id)
            per_start = (time.perf_counter() - started) / max(len(queued), 1)
            results["(each start task, after the tick)"] = (per_start, 1)
    return results


# --- main -----------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--naive", type=int, default=2_000)
    parser.add_argument("--tick-limit", type=int, default=0, help="syncs started per tick (default: the setting)")
    parser.add_argument("--results", default=str(RESULTS), help="RESULTS.md to update; '' for none")
    parser.add_argument("--keep-database", action="store_true", help="leave the benchmark's database at the end")
    parser.add_argument("--child-sync", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a run of seconds that proves the script still works (make test): 3,000 and 1,000 models, no "
        "RESULTS.md; its figures mean nothing",
    )
    args = parser.parse_args()
    if args.smoke:
        args.models, args.small, args.naive, args.results = 3_000, 1_000, 100, ""
    if args.child_sync:
        child_sync(args.child_sync)
        return

    begun = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="gpux-bench-sync-"))
    env = environment(workdir)
    recreate_database(env["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from apps.accounts.models import User
    from apps.organizations.services import create_organization
    from apps.registries.services import create_registry

    tag = secrets.token_hex(3)
    owner = User.objects.create_user(email=f"bench-{tag}@example.com", handle=f"bench-user-{tag}", password=None)
    organization = create_organization(creator=owner, slug=f"bench-{tag}", name="Benchmark")

    site = workdir / "site"
    site.mkdir()
    log(f"writing indexes of {args.small:,} and {args.models:,} models")
    write_index(site / "small.jsonl", args.small, seed=f"{tag}s")
    write_index(site / "large.jsonl", args.models, seed=f"{tag}l")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"

        log("baseline A: the backend reading the large index, no database")
        listed, listing_seconds = baseline_listing(f"{base}/large.jsonl")
        registries = {
            name: create_registry(
                organization=organization,
                actor=owner,
                backend="http-index",
                slug=name,
                name=name,
                config={"url": f"{base}/{name}.jsonl", "page_size": PAGE_SIZE},
            )
            for name in ("small", "large")
        }
        log(f"baseline B: {args.naive:,} models one at a time")
        naive_seconds = baseline_naive(organization, registries["small"], args.naive)

        runs = {}
        for name, count in (("small", args.small), ("large", args.models)):
            for attempt in ("first", "second", "re-read"):
                if attempt == "re-read":
                    # Same content, new Last-Modified: the whole index is read again and compared model by model.
                    later = time.time() + 5
                    os.utime(site / f"{name}.jsonl", (later, later))
                log(f"sync of {count:,} models ({attempt})")
                report = run_sync_in_child(registries[name], owner)
                report["count"] = count
                runs[(name, attempt)] = report
                log(
                    f"  {report['seconds']:.2f} s, {count / report['seconds']:,.0f} models/s, peak RSS "
                    f"+{(report['peak_kib'] - report['rss_before_kib']) / 1024:.0f} MiB; result {report['result']}"
                )
        log("scheduler: 1,000 registries")
        from django.conf import settings

        args.tick_limit = args.tick_limit or settings.REGISTRY_SCHEDULER_MAX_STARTS_PER_TICK
        ticks = scheduler_ticks(owner, args.tick_limit)
    finally:
        server.terminate()
        server.wait(timeout=10)

    large_first, large_second = runs[("large", "first")], runs[("large", "second")]
    rate = args.models / large_first["seconds"]
    growth_small = (runs[("small", "first")]["peak_kib"] - runs[("small", "first")]["rss_before_kib"]) / 1024
    growth_large = (large_first["peak_kib"] - large_first["rss_before_kib"]) / 1024
    speedup = large_first["seconds"] / large_second["seconds"]
    reread_speedup = large_first["seconds"] / runs[("large", "re-read")]["seconds"]
    worst_tick = max(seconds for name, (seconds, _) in ticks.items() if not name.startswith("("))
    targets = [
        ("sync throughput", f"{rate:,.0f} models/s", "≥ 5,000 models/s", rate >= 5000),
        (
            "memory flat in the number of models",
            f"+{growth_small:.0f} MiB at {args.small:,}, +{growth_large:.0f} MiB at {args.models:,}",
            f"growth at {args.models // args.small}× the models ≤ 1.5× (+ 16 MiB)",
            growth_large <= growth_small * 1.5 + 16,
        ),
        ("second sync, nothing changed", f"{speedup:.1f}× faster", "≥ 5× faster", speedup >= 5),
        (
            "second sync, nothing changed but the index re-read in full (informational)",
            f"{reread_speedup:.1f}× faster",
            "none",
            True,
        ),
        ("scheduler tick, 1,000 registries", f"{worst_tick * 1000:.0f} ms worst", "< 1 s", worst_tick < 1),
    ]
    lines = []
    for name, measured, goal, ok in targets:
        line = f"target {name}: {measured} (goal {goal}) {'ok' if ok else 'short'}"
        lines.append(line)
        print(line)
    if args.results:
        write_results(
            Path(args.results),
            section(args, runs, ticks, listed, listing_seconds, naive_seconds, lines, time.perf_counter() - begun),
        )
        log(f"wrote {args.results}")
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    if not args.keep_database:
        from django.db import connections

        connections.close_all()
        recreate_database(env["DATABASE_URL"], drop_only=True)


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import django
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}, "
        f"Django {django.get_version()}, PostgreSQL {server}"
    )


def section(args, runs, ticks, listed, listing_seconds, naive_seconds, lines, total) -> str:
    rows = [
        "| run | models | wall time | models/s | peak RSS over start | result |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        f"| baseline A: the HTTP-index backend listing alone (no database) | {listed:,} | {listing_seconds:.2f} s | "
        f"{listed / listing_seconds:,.0f} | — | — |",
        f"| baseline B: one model at a time through the ORM | {args.naive:,} | {naive_seconds:.2f} s | "
        f"{args.naive / naive_seconds:,.0f} | — | — |",
    ]
    for (_name, attempt), report in runs.items():
        result = report["result"] or {}
        counts = ", ".join(f"{key} {result.get(key, 0):,}" for key in ("created", "updated", "unchanged", "removed"))
        rows.append(
            f"| portal sync, {RUN_NAMES[attempt]} | {report['count']:,} | {report['seconds']:.2f} s | "
            f"{report['count'] / report['seconds']:,.0f} | "
            f"{(report['peak_kib'] - report['rss_before_kib']) / 1024:.0f} MiB | {counts} |"
        )
    tick_rows = ["| tick | registries queued | time |", "| --- | ---: | ---: |"]
    tick_rows += [f"| {name} | {count} | {seconds * 1000:.0f} ms |" for name, (seconds, count) in ticks.items()]
    return "\n".join(
        [
            "## Registry sync: 100,000 models from an HTTP index, and the scheduler (`benchmarks/registry_sync.py`)",
            "",
            f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}. Whole run: {total:.0f} s.",
            "",
            "The index is JSON Lines served by `python -m http.server` on 127.0.0.1 (one version and one file per",
            "model, with size and SHA-256); each sync runs the sync job's task code in a fresh process against",
            "PostgreSQL on the same machine (metadata mode: files are listed, not downloaded); pages of 1,000 models.",
            "Peak RSS is the process's `ru_maxrss` over its RSS just before the sync.",
            "",
            *rows,
            "",
            "Scheduler: 1,000 registries in 100 organizations, hourly schedules spread over the hour. A tick selects",
            "the due registries, moves their next time on and queues one start task each (Redis broker); each task",
            f"then writes its sync's job (timed separately below). At most {args.tick_limit} queued per tick.",
            "",
            *tick_rows,
            "",
            "```",
            *lines,
            "```",
        ]
    )


def write_results(path: Path, body: str) -> None:
    update_section(path, RESULTS_BEGIN, RESULTS_END, body)


if __name__ == "__main__":
    main()
