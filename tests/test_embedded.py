"""`make run` cannot rot: start the embedded mode as the Makefile does and load the sign-in page.

The launcher runs in a fresh var/ folder (GPUX_VAR_DIR), without DATABASE_URL and REDIS_URL, on a free port;
it migrates SQLite, seeds the demo organization, starts gunicorn, a Celery worker and beat, and is stopped
by its pid with SIGTERM, which must stop its children too. An audit export started from the audit page must
run on the embedded worker (file broker) to a downloadable file.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_embedded(var_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "DEBUG"}}
    env.update(GPUX_VAR_DIR=str(var_dir), GPUX_PORT=str(port), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "gpux_portal.embedded"],
        cwd=REPO,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_for_banner(process: subprocess.Popen, log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if "GPUX Portal is up" in text:
            return text
        if process.poll() is not None:
            pytest.fail(f"the launcher exited with {process.returncode}:\n{text[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"no banner within {START_TIMEOUT} s:\n{log_path.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> int:
    os.kill(process.pid, signal.SIGTERM)
    return process.wait(timeout=60)


def child_pids(parent: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie counts as gone
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return bool(state.stdout.strip()) and not state.stdout.strip().startswith("Z")


class Browser:
    """Just enough of a browser for the smoke test: cookies, CSRF tokens, form posts (urllib only)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str, str]:
        with self.opener.open(self.base + path, timeout=20) as response:
            return response.status, response.geturl(), response.read().decode()

    def post(self, path: str, data: dict[str, str], *, form_page: str | None = None) -> tuple[int, str, str]:
        _, _, html = self.get(form_page or path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + path})
        with self.opener.open(request, timeout=20) as response:
            return response.status, response.geturl(), response.read().decode()


def export_audit_trail_through_the_pages(base: str, email: str, password: str) -> str:
    """Sign in, start an audit export from the audit page, wait for the worker to finish it; return the file."""
    browser = Browser(base)
    status, url, _ = browser.post("/accounts/login/", {"login": email, "password": password})
    assert status == 200 and not url.endswith("/accounts/login/"), url
    status, url, _ = browser.post("/orgs/demo/audit/export/", {"format": "csv"}, form_page="/orgs/demo/audit/")
    uuid = re.search(r"/jobs/([0-9a-f-]{36})/", url).group(1)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        _, _, fragment = browser.get(f"/jobs/{uuid}/progress/")
        state = re.search(r'data-status="(\w+)"', fragment).group(1)
        if state in {"succeeded", "failed"}:
            break
        time.sleep(0.5)
    assert state == "succeeded", fragment
    download = re.search(r'href="(/api/v1/jobs/[^"]+/download/)"', fragment).group(1)
    return browser.get(download)[2]


@pytest.mark.slow
def test_make_run_starts_serves_the_login_page_and_stops_with_its_children(tmp_path):
    port = free_port()
    log_path = tmp_path / "run.log"
    process = start_embedded(tmp_path / "var", port, log_path)
    children: list[int] = []
    try:
        banner = wait_for_banner(process, log_path)
        assert f"http://127.0.0.1:{port}/" in banner
        assert "owner@demo.local" in banner and "member@demo.local" in banner
        children = child_pids(process.pid)
        assert len(children) == 3, "gunicorn, a Celery worker and beat"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as response:
            assert response.status == 200
            assert b'name="login"' in response.read()
        # The worker and the broker work: a job started from a page runs to its file.
        credentials = json.loads((tmp_path / "var" / "demo-credentials.json").read_text())
        exported = export_audit_trail_through_the_pages(
            f"http://127.0.0.1:{port}", "owner@demo.local", credentials["owner@demo.local"]
        )
        assert exported.splitlines()[0].startswith("uuid,") and "organization.created" in exported
        # The demo registry's first sync ran on the embedded worker (SQLite: the engine's bulk_create path).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with sqlite3.connect(tmp_path / "var" / "portal.sqlite3") as database:
                row = database.execute(
                    "SELECT j.status, j.error, s.created FROM registries_registrysync s "
                    "JOIN core_job j ON s.job_id = j.id ORDER BY s.id LIMIT 1"
                ).fetchone()
            if row and row[0] in {"succeeded", "failed"}:
                break
            time.sleep(0.5)
        assert row is not None and row[0] == "succeeded", row
        assert row[2] == 5
        # web, worker and beat all write: the embedded database runs in WAL mode (settings: init_command).
        with sqlite3.connect(tmp_path / "var" / "portal.sqlite3") as database:
            assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        if process.poll() is None:
            assert stop(process) == 0
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in children), "the children outlived the launcher"

    # Run again: nothing to migrate or seed, the same demo accounts.
    second_log = tmp_path / "second.log"
    process = start_embedded(tmp_path / "var", port, second_log)
    try:
        second = wait_for_banner(process, second_log)
        assert "database is up to date" in second
        assert "seeding" not in second and "applying" not in second
        assert banner.split("sign in as", 1)[1].split("\n")[0] == second.split("sign in as", 1)[1].split("\n")[0]
    finally:
        if process.poll() is None:
            assert stop(process) == 0


WRITER = """
from apps.accounts.models import User
from apps.organizations import services
owner = User.objects.get(handle="writer-owner")
for number in range(25):
    services.create_organization(creator=owner, slug=f"w{WHO}-{number}", name="Concurrent")
print("done")
"""


@pytest.mark.slow
def test_embedded_sqlite_takes_concurrent_writers_without_database_is_locked(tmp_path):
    """Web, worker and beat write at once in `make run`: WAL, a busy timeout and immediate transactions make
    concurrent writers queue instead of failing with "database is locked"."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "DEBUG"}}
    env["GPUX_VAR_DIR"] = str(tmp_path)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=300)
    create = (
        "from apps.accounts.models import User; User.objects.create_user(email='w@x.example', handle='writer-owner')"
    )
    subprocess.run([*manage, "shell", "-c", create], cwd=REPO, env=env, check=True, timeout=120)
    writers = [
        subprocess.Popen(
            [*manage, "shell", "-c", WRITER.replace("WHO", str(who))],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for who in range(3)
    ]
    outputs = [writer.communicate(timeout=300)[0] for writer in writers]
    for writer, output in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, output[-3000:]
        assert "database is locked" not in output
    with sqlite3.connect(tmp_path / "portal.sqlite3") as database:
        count = database.execute("SELECT COUNT(*) FROM organizations_organization WHERE name = 'Concurrent'").fetchone()
        # each organization's audit chain is intact too: one "organization.created" event each
        events = database.execute(
            "SELECT COUNT(*) FROM audit_auditevent WHERE action = 'organization.created' AND seq = 1"
        ).fetchone()
    assert count[0] == 75
    assert events[0] >= 75
