"""Usage analytics at scale: raw events over 1,000 organizations, the rollup of one day, the per-organization page
and API over 90 days, and what recording costs a request.

    .venv/bin/python benchmarks/analytics.py                              # 10,000,000 events + a day of 1,000,000
    .venv/bin/python benchmarks/analytics.py --events 1000000 --results ''   # smaller, no RESULTS.md
    .venv/bin/python benchmarks/analytics.py --smoke                      # seconds; figures mean nothing

Needs PostgreSQL (``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/gpux_bench_analytics``; dropped
and created again at the start, migrated, dropped at the end unless ``--keep-database``) and Redis
(``BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/12``; only the usage stream and rate keys are touched).

What it does, in one run:

1. ``--orgs`` organizations (1,000), 5 users each, with admin tokens for the ones measured;
2. **generates raw usage events with COPY** (``--events`` spread over 90 days, plus ``--day-events`` on one day,
   yesterday), with the table's secondary indexes dropped during the load and built again after (timed);
3. **rolls up the 90 days** (every hour and day, as the periodic job does after downtime), then **the rollup of
   the one big day** again on its own (its 24 hours and the day: the target);
4. **the page and the API over 90 days** for ``--sample`` organizations, ``--requests`` each, through Django's
   test client in this process (p50/p95), and as a baseline the same day series counted from the raw events;
5. **recording overhead**: CPU time (``time.process_time``) of ``usage.record`` with recording on against the same
   loop with recording off (``USAGE_RECORDING=false``), in the same run; and the whole download request's CPU
   with recording on and off, interleaved (informational: noisier than the difference it measures);
6. the drain: how fast it copies recorded events into the database.

Targets (issue #17): the rollup of a day of 1,000,000 events under 60 s; the page and its API at most 200 ms p95
over 90 days from rollups; recording adds at most 0.2 ms of CPU to a request.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import update_section
from support import log, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gpux_bench_analytics"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
RESULTS_BEGIN = "<!-- benchmarks/analytics.py: begin (generated, do not edit by hand) -->"
RESULTS_END = "<!-- benchmarks/analytics.py: end -->"
KINDS = ["prediction"] * 6 + ["download"] * 2 + ["job", "batch_rows"]
TOKEN_KINDS = ["", "", "personal", "ci", "service"]
COPY_COLUMNS = (
    "event_id, organization_id, actor_id, kind, token_id, token_kind, model_id, version_id, subject_type, "
    "subject_id, subject_label, path, blob_sha256, items, bytes, latency_ms, compute_seconds, device, outcome, "
    "status_code, metadata, created_at"
)


def environment(workdir: Path) -> dict[str, str]:
    env = {
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        "DJANGO_SETTINGS_MODULE": "gpux_portal.settings",
        "DJANGO_ENV": "test",
        "GPUX_VAR_DIR": str(workdir / "var"),
        "LOG_LEVEL": "WARNING",
        "CELERY_SKIP_CHECKS": "1",
    }
    env["REDIS_URL"] = env["CELERY_BROKER_URL"] = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    os.environ.update(env)
    return env


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- 1. organizations and users -----------------------------------------------------------------------------------
def make_organizations(count: int) -> tuple[list[int], list[int]]:
    from apps.accounts.models import User
    from apps.organizations.models import Organization

    tag = random.getrandbits(24)
    organizations = Organization.objects.bulk_create(
        [Organization(slug=f"o{tag:x}-{i}", name=f"Org {i}") for i in range(count)], batch_size=1000
    )
    users = User.objects.bulk_create(
        [User(email=f"u{tag:x}-{i}@bench.example", handle=f"u{tag:x}-{i}", password="!") for i in range(count * 5)],
        batch_size=2000,
    )
    return [o.pk for o in organizations], [u.pk for u in users]


# --- 2. raw events through COPY -----------------------------------------------------------------------------------
def event_rows(count: int, organizations: list[int], users: list[int], start: datetime, seconds: int, seed: int):
    """Tab-separated COPY lines, ``count`` events between ``start`` and ``start + seconds``."""
    rng = random.Random(seed)
    base = start.timestamp()
    per_org_users = max(1, len(users) // len(organizations))
    for number in range(count):
        org_index = rng.randrange(len(organizations))
        org = organizations[org_index]
        user = users[org_index * per_org_users + rng.randrange(per_org_users)] if rng.random() < 0.8 else "\\N"
        kind = rng.choice(KINDS)
        token_kind = rng.choice(TOKEN_KINDS)
        token = org * 10 + TOKEN_KINDS.index(token_kind) if token_kind else "\\N"
        model = org * 100 + rng.randrange(10)
        latency = f"{rng.expovariate(1 / 20):.3f}" if kind == "prediction" else "\\N"
        outcome = "error" if rng.random() < 0.02 else "ok"
        moment = datetime.fromtimestamp(base + rng.random() * seconds, UTC).isoformat()
        compute = f"{rng.random() * 0.01:.5f}" if kind == "prediction" else "0"
        yield (
            f"{seed:08x}-0000-4000-8000-{number:012x}\t{org}\t{user}\t{kind}\t{token}\t{token_kind}\t{model}\t"
            f"{model * 10 + 1}\t\t\t\t\t\t{rng.randint(1, 32)}\t{rng.randint(0, 4096)}\t{latency}\t{compute}\t"
            f"{'gpu' if compute != '0' else ''}\t{outcome}\t200\t{{}}\t{moment}\n"
        )


def copy_events(rows, table: str) -> int:
    from django.db import connection

    written = 0
    buffer = io.StringIO()
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({COPY_COLUMNS}) FROM STDIN") as copy:
        for line in rows:
            buffer.write(line)
            written += 1
            if written % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    return written


def drop_for_load(table: str) -> tuple[list[str], list[str]]:
    """Drop the table's secondary indexes and its unique and foreign-key constraints (a bulk load builds them once,
    after); returns what re-creates them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid), conindid FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND i.indexrelid <> ALL(%s)",
            [table, [row[2] for row in constraints if row[2]]],
        )
        indexes = cursor.fetchall()
        for name, _definition, _index in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    return (
        [definition for _name, definition in indexes],
        [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, definition, _index in constraints],
    )


def load_events(args, organizations, users, day: datetime) -> dict[str, float]:
    from django.db import connection

    from apps.analytics.models import UsageEvent

    table = UsageEvent._meta.db_table
    indexes, constraints = drop_for_load(table)
    started = time.perf_counter()
    start = day - timedelta(days=args.days - 1)
    written = copy_events(event_rows(args.events, organizations, users, start, args.days * 86_400, seed=1), table)
    written += copy_events(event_rows(args.day_events, organizations, users, day, 86_400, seed=2), table)
    copy_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for statement in [*indexes, *constraints]:
            cursor.execute(statement)
        cursor.execute(f"ANALYZE {table}")
    return {"events": written, "copy_seconds": copy_seconds, "index_seconds": time.perf_counter() - started}


# --- 3. rollups ---------------------------------------------------------------------------------------------------
def roll_up_all(day: datetime, days: int) -> dict[str, float]:
    from apps.analytics import rollups
    from apps.analytics.models import Granularity, PendingRollup

    start = day - timedelta(days=days - 1)
    end = day + timedelta(days=1)
    rollups.mark_range(start, end)
    # The page over 90 days reads daily rollups: the other days' hours are left out of this (long) catch-up, and the
    # big day is timed alone below.
    PendingRollup.objects.filter(granularity=Granularity.HOUR).delete()
    PendingRollup.objects.filter(bucket_start__gte=day, bucket_start__lt=end).delete()
    started = time.perf_counter()
    done = rollups.roll_up_pending(now=end + timedelta(days=1), max_seconds=86_400)
    all_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rows = 0
    for hour in range(24):
        rows += rollups.roll_up_bucket(Granularity.HOUR, day + timedelta(hours=hour))
    hours_seconds = time.perf_counter() - started
    rows += rollups.roll_up_bucket(Granularity.DAY, day)
    day_seconds = time.perf_counter() - started
    return {"other_buckets": done["hours"] + done["days"], "other_seconds": all_seconds, "day_seconds": day_seconds,
            "day_hours_seconds": hours_seconds, "day_rows": rows}  # fmt: skip


# --- 4. page and API ----------------------------------------------------------------------------------------------
def measure_pages(args, organizations: list[int]) -> dict[str, list[float]]:
    from django.db.models import Count
    from django.db.models.functions import TruncDay
    from django.test import Client
    from rest_framework.test import APIClient

    from apps.accounts.models import User
    from apps.accounts.services import create_api_token
    from apps.analytics.models import UsageEvent
    from apps.core.access import Role
    from apps.organizations.models import Membership, Organization

    rng = random.Random(3)
    sample = Organization.objects.filter(pk__in=rng.sample(organizations, min(args.sample, len(organizations))))
    admin = User.objects.create_user(email="bench-admin@bench.example", handle="bench-admin", password=None)
    Membership.objects.bulk_create([Membership(organization=o, user=admin, role=Role.ADMIN) for o in sample])
    page, api = Client(), APIClient()
    page.force_login(admin)
    timings: dict[str, list[float]] = {"page": [], "api": [], "raw": []}
    for organization in sample:
        _token, raw = create_api_token(user=admin, name="bench", scope="read", organization=organization)
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        for round_number in range(args.requests + 1):
            started = time.perf_counter()
            response = page.get(f"/orgs/{organization.slug}/analytics/?period=90d")
            page_seconds = time.perf_counter() - started
            assert response.status_code == 200, response.status_code
            started = time.perf_counter()
            response = api.get(f"/api/v1/orgs/{organization.slug}/usage/?period=90d")
            api_seconds = time.perf_counter() - started
            assert response.status_code == 200, response.content[:300]
            started = time.perf_counter()
            list(
                UsageEvent.objects.filter(
                    organization=organization, created_at__gte=datetime.now(UTC) - timedelta(days=91)
                )
                .annotate(day=TruncDay("created_at"))
                .values("day", "kind")
                .annotate(events=Count("id"), users=Count("actor", distinct=True))
            )
            raw_seconds = time.perf_counter() - started
            if round_number:  # the first of each is a warm-up (caches, a new token's first lookup)
                timings["page"].append(page_seconds)
                timings["api"].append(api_seconds)
                timings["raw"].append(raw_seconds)
    return timings


# --- 5. recording overhead ----------------------------------------------------------------------------------------
def measure_recording(args, organization_id: int, user_id: int) -> dict[str, float]:
    from django.conf import settings

    from apps.analytics import usage

    def loop(count: int) -> float:
        started = time.process_time()
        for _ in range(count):
            usage.record(
                "prediction", organization_id=organization_id, user_id=user_id, token_id=1, token_kind="ci",
                model_id=7, version_id=8, deployment_id=9, items=4, bytes=512, latency_ms=3.2, outcome="ok",
                status_code=200, compute_seconds=0.002, device="gpu",
            )  # fmt: skip
        usage.flush()  # the recorder's thread sends the rest: its CPU is this process' too, and counted
        return (time.process_time() - started) / count

    on, off = [], []
    for _ in range(args.rounds):
        settings.USAGE_RECORDING = True
        on.append(loop(args.records))
        settings.USAGE_RECORDING = False
        off.append(loop(args.records))
    settings.USAGE_RECORDING = True
    return {"on_ms": statistics.median(on) * 1000, "off_ms": statistics.median(off) * 1000}


def measure_download_requests(args) -> dict[str, float]:
    """The whole request that causes a download event, recording on and off, interleaved blocks."""
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from apps.accounts.models import User
    from apps.marketplace import services
    from apps.organizations.services import create_organization

    owner = User.objects.create_user(email="bench-dl@bench.example", handle="bench-dl", password=None)
    organization = create_organization(creator=owner, slug="bench-dl-org", name="Downloads")
    model = services.create_model(organization=organization, actor=owner, name="blob", visibility="public")
    version = services.create_version(model=model, actor=owner, label="1")
    services.add_file(version=version, actor=owner, path="weights.bin", uploaded=SimpleUploadedFile("w", b"x" * 1024))
    client = Client()
    client.force_login(owner)
    url = f"/api/v1/models/{organization.slug}/blob/versions/1/files/weights.bin"
    assert client.get(url).status_code == 200, client.get(url).content[:300]
    on, off = [], []
    for _ in range(args.rounds):
        for flag, into in ((True, on), (False, off)):
            settings.USAGE_RECORDING = flag
            started = time.process_time()
            for _ in range(args.requests_per_round):
                b"".join(client.get(url).streaming_content)
            into.append((time.process_time() - started) / args.requests_per_round)
    settings.USAGE_RECORDING = True
    return {"on_ms": statistics.median(on) * 1000, "off_ms": statistics.median(off) * 1000}


# --- 6. the drain -------------------------------------------------------------------------------------------------
def measure_drain(count: int) -> tuple[int, float]:
    from apps.analytics import drain

    started = time.perf_counter()
    report = drain.drain_usage_stream(max_seconds=3600)
    return report.inserted, time.perf_counter() - started


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip().split(" ")[0:2]
                cpu = " ".join(cpu)
                break
    except OSError:
        pass
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg = cursor.fetchone()[0].split(" on ")[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}, "
        f"Django {django.get_version()}, {pg}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000_000, help="events spread over --days days")
    parser.add_argument("--days", type=int, default=90, help="days of events (the page asks for 90)")
    parser.add_argument("--day-events", type=int, default=1_000_000, help="more events on one day (yesterday)")
    parser.add_argument("--sample", type=int, default=20, help="organizations whose page and API are measured")
    parser.add_argument("--requests", type=int, default=10, help="page and API requests per organization")
    parser.add_argument("--records", type=int, default=5000, help="usage.record calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests-per-round", type=int, default=200)
    parser.add_argument("--results", default=str(RESULTS), help="RESULTS.md to update; '' for none")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny sizes, no RESULTS.md")
    args = parser.parse_args()
    if args.smoke:
        args.orgs, args.events, args.day_events, args.sample, args.requests, args.days = 20, 20_000, 5_000, 3, 3, 3
        args.records, args.rounds, args.requests_per_round, args.results = 300, 2, 20, ""

    begun = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="gpux-bench-analytics-"))
    env = environment(workdir)
    recreate_database(env["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from apps.analytics import drain, usage

    redis = usage.client()
    redis.delete(usage.STREAM, drain.LOCK)
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)

    log(f"{args.orgs} organizations")
    organizations, users = make_organizations(args.orgs)
    log(f"COPY {args.events:,} events over {args.days} days and {args.day_events:,} on {day:%Y-%m-%d}")
    loaded = load_events(args, organizations, users, day)
    log(f"loaded {loaded['events']:,}: COPY {loaded['copy_seconds']:.1f} s, indexes {loaded['index_seconds']:.1f} s")
    log("rolling up 90 days")
    rolled = roll_up_all(day, args.days)
    log(f"{rolled['other_buckets']} buckets in {rolled['other_seconds']:.1f} s; the day {rolled['day_seconds']:.2f} s")
    log("page and API over 90 days")
    timings = measure_pages(args, organizations)
    log("recording overhead")
    recording = measure_recording(args, organizations[0], users[0])
    requests = measure_download_requests(args)
    log("drain")
    drained, drain_seconds = measure_drain(args.records * args.rounds)
    redis.delete(usage.STREAM, drain.LOCK)

    page_p50, page_p95 = percentile(timings["page"], 0.5) * 1000, percentile(timings["page"], 0.95) * 1000
    api_p50, api_p95 = percentile(timings["api"], 0.5) * 1000, percentile(timings["api"], 0.95) * 1000
    raw_p50, raw_p95 = percentile(timings["raw"], 0.5) * 1000, percentile(timings["raw"], 0.95) * 1000
    overhead = recording["on_ms"] - recording["off_ms"]
    request_overhead = requests["on_ms"] - requests["off_ms"]
    lines = [
        f"events: {loaded['events']:,} over {args.orgs:,} organizations (COPY {loaded['copy_seconds']:.1f} s, "
        f"{loaded['events'] / max(loaded['copy_seconds'], 1e-9):,.0f}/s; "
        f"indexes built after in {loaded['index_seconds']:.1f} s)",
        f"rollup of the other {args.days - 1} days (daily buckets only): {rolled['other_buckets']:,} buckets "
        f"in {rolled['other_seconds']:.1f} s",
        f"rollup of one day ({args.day_events:,} + its share of the {args.days} days): "
        f"24 hours {rolled['day_hours_seconds']:.2f} s, "
        f"with the day bucket {rolled['day_seconds']:.2f} s, {rolled['day_rows']:,} rollup rows",
        f"page over 90 days: p50 {page_p50:.1f} ms, p95 {page_p95:.1f} ms ({len(timings['page'])} requests)",
        f"API over 90 days: p50 {api_p50:.1f} ms, p95 {api_p95:.1f} ms",
        f"baseline, the same day series from raw events: p50 {raw_p50:.1f} ms, p95 {raw_p95:.1f} ms",
        f"usage.record CPU: {recording['on_ms'] * 1000:.1f} µs on, {recording['off_ms'] * 1000:.1f} µs off",
        f"download request CPU: {requests['on_ms']:.3f} ms on, {requests['off_ms']:.3f} ms off "
        f"(difference {request_overhead:+.3f} ms, noisy)",
        f"drain: {drained:,} events in {drain_seconds:.2f} s ({drained / max(drain_seconds, 1e-9):,.0f}/s)",
    ]
    for line in lines:
        print(line)
    targets = [
        ("rollup_one_day", f"{rolled['day_seconds']:.2f} s", "< 60 s", rolled["day_seconds"] < 60),
        ("page_p95_90_days", f"{page_p95:.1f} ms", "<= 200 ms", page_p95 <= 200),
        ("api_p95_90_days", f"{api_p95:.1f} ms", "<= 200 ms", api_p95 <= 200),
        ("recording_cpu_overhead", f"{overhead:.4f} ms", "<= 0.2 ms", overhead <= 0.2),
    ]
    target_lines = [f"target {name}: {got} (goal {goal}) {'ok' if ok else 'short'}" for name, got, goal, ok in targets]
    for line in target_lines:
        print(line)
    total = time.perf_counter() - begun
    if args.results:
        size_note = (
            "full size"
            if args.events >= 10_000_000
            else f"{args.events:,} events over 90 days (not the 10,000,000 of "
            "full size: this shared 2-core machine), plus the big day"
        )
        body = "\n".join(
            [
                "## Usage analytics: events, rollups, the organization's page and API, recording "
                "(`benchmarks/analytics.py`)",
                "",
                f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}. Whole run: {total:.0f} s. "
                f"Size: {size_note}.",
                "",
                "Events are generated in Python and loaded with COPY (secondary indexes dropped during the load and",
                "built after). Rollups run the periodic job's own code (`apps.analytics.rollups`). Page and API are",
                "measured through Django's test client in the benchmark's process (admin of the organization,",
                "`period=90d`, daily buckets; first request per organization not counted). Recording overhead is the",
                "CPU (`time.process_time`) of `usage.record` with recording on minus the same loop with it off; the",
                "Redis server's own CPU for the XADD is not in it.",
                "",
                *[f"- {line}" for line in lines],
                "",
                "```",
                *target_lines,
                "```",
            ]
        )
        update_section(Path(args.results), RESULTS_BEGIN, RESULTS_END, body)
    if not args.keep_database:
        from django.db import connections

        connections.close_all()
        recreate_database(env["DATABASE_URL"], drop_only=True)


if __name__ == "__main__":
    main()
