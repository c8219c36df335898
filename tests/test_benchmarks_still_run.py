"""Every benchmark under benchmarks/ still runs, at its smoke size (``--smoke``: seconds, no RESULTS.md).

A benchmark that nobody runs breaks unnoticed (issue #13: ``benchmarks/artifacts.py`` failed on main for weeks
after completing a large upload began to answer 202). No target is asserted here: figures taken on a shared
machine in the middle of a test run mean nothing, and tests never assert on wall-clock time. What is asserted is
that each script finishes with status 0 and prints its ``target`` lines, so a broken script fails CI.

The scripts are found by reading the folder: a new benchmark is covered without editing this file, and one
that has no ``--smoke`` fails here until it gets one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(path for path in BENCHMARKS.glob("*.py") if 'if __name__ == "__main__"' in path.read_text())


def test_the_benchmark_folder_holds_the_scripts_the_readme_describes():
    names = {path.name for path in SCRIPTS}
    assert {"artifacts.py", "inference.py", "registry_sync.py"} <= names, names


def _environment(script: Path) -> dict[str, str]:
    """Its own PostgreSQL database beside the test database, and the test run's broker Redis database (each
    script flushes its Redis database, which no other test uses while this one runs)."""
    database = settings.DATABASES["default"]
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    user = database.get("USER") or "postgres"
    name = f"{database['NAME']}_bench_{script.stem}"[:63]
    redis_url = settings.CELERY_BROKER_URL
    env = {key: value for key, value in os.environ.items() if key not in {"DJANGO_ENV", "DEBUG"}}
    env.update(
        DATABASE_URL=f"postgres://{user}@{host}:{port}/{name}",
        REDIS_URL=redis_url,
        BENCH_REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_the_benchmark_runs_to_its_targets_at_smoke_size(script):
    if connection.vendor != "postgresql" or not urlsplit(settings.CELERY_BROKER_URL).scheme.startswith("redis"):
        pytest.fail("the benchmarks need PostgreSQL and Redis, as make test runs them")
    result = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=BENCHMARKS.parent,
        env=_environment(script),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{script.name} --smoke exited {result.returncode}:\n{output[-4000:]}"
    targets = [line for line in result.stdout.splitlines() if line.startswith("target ")]
    assert targets, f"{script.name} --smoke printed no target lines:\n{output[-4000:]}"
    assert all(line.rstrip().endswith((" ok", " short")) for line in targets), targets
