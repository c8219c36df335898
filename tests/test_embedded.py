"""`make run` cannot rot: start the embedded mode as the Makefile does and load the sign-in page; the demo answers
readably (class names, a sentence embedding), its models are public, its errors are the portal's own pages.

The launcher runs in a fresh var/ folder (GPUX_VAR_DIR), without DATABASE_URL and REDIS_URL, on a free port;
it migrates SQLite, seeds the demo organization, starts gunicorn, two Celery workers (interactive and
background) and beat, and is stopped by its pid with SIGTERM, which must stop its children too. An audit export
started from the audit page must run on the embedded worker (file broker) to a downloadable file.

The launcher also supervises and stops whatever arrives: two quick Ctrl-Cs or a SIGTERM to its whole process
group leave no child (nor their workers and pool processes) running; a worker that dies is started again and
runs the next job; pages keep answering while more synchronous predictions wait than the web server has threads.
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
import urllib.error
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


METRICS_PORT_BASE = free_port()


def embedded_env(var_dir: Path, port: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "DEBUG"}}
    env.update(GPUX_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    # The workers' metrics ports (base, base + 1): free ones, so that parallel runs do not meet.
    env["GPUX_WORKER_METRICS_PORT_BASE"] = str(METRICS_PORT_BASE)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if port is not None:
        env["GPUX_PORT"] = str(port)
    return env


def start_embedded(var_dir: Path, port: int, log_path: Path, *, new_session: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gpux_portal.embedded"],
        cwd=REPO,
        env=embedded_env(var_dir, port),
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=new_session,
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


def descendants(parent: int) -> set[int]:
    """Every process below ``parent``: its children, their workers and pool processes."""
    found: set[int] = set()
    frontier = [parent]
    while frontier:
        for pid in child_pids(frontier.pop()):
            if pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


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
        assert len(children) == 4, "gunicorn, an interactive and a background Celery worker, and beat"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as response:
            assert response.status == 200
            assert b'name="login"' in response.read()
        # The worker and the broker work: a job started from a page runs to its file.
        credentials = json.loads((tmp_path / "var" / "demo-credentials.json").read_text())
        exported = export_audit_trail_through_the_pages(
            f"http://127.0.0.1:{port}", "owner@demo.local", credentials["owner@demo.local"]
        )
        assert exported.splitlines()[0].startswith("uuid,") and "organization.created" in exported
        # The owner is the operator: the banner says where the admin site is.
        assert f"owner@demo.local is also the operator: the admin site is http://127.0.0.1:{port}/admin/" in banner
        # A visitor who is not signed in sees the public demo models on the landing page, and the first thing one
        # runs answers in words and numbers (the gpux.yml, tokenizer and labels seed_demo ships).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            landing = response.read().decode()
        assert 'href="/models/demo/iris-classifier/#try-it"' in landing
        assert 'href="/models/demo/all-minilm-l6-v2-int8/#try-it"' in landing
        token = api_token(tmp_path / "var", "member@demo.local")
        base = f"http://127.0.0.1:{port}/api/v1/models/demo"
        flowers = {"float_input": [[5.1, 3.5, 1.4, 0.2]]}
        iris = call_api(f"{base}/iris-classifier/versions/1.0.0/predict", token, flowers)
        [flower] = iris["answer"]["predictions"]
        assert flower["label"] == "setosa" and round(flower["scores"]["setosa"], 2) == 0.98, iris
        minilm = call_api(f"{base}/all-minilm-l6-v2-int8/versions/1.0.0/predict", token, {"text": "I play the guitar."})
        [embedding] = minilm["answer"]["embeddings"]
        assert len(embedding) == 384 and abs(sum(value * value for value in embedding) - 1.0) < 1e-3, minilm
        # Errors are the portal's own pages in make run too, not Django's technical ones.
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page/", timeout=10)
        except urllib.error.HTTPError as error:
            missing = error.read().decode()
            assert error.code == 404
        assert "Page not found" in missing and "GPUX Portal" in missing and "Traceback" not in missing
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/portal/favicon.svg", timeout=10) as response:
            assert response.status == 200 and b"<svg" in response.read()
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

        # Metrics: the web's /metrics answers the loopback address; the workers' heartbeats (files beside the file
        # broker) make them up for their queues; the interactive worker serves its own port.
        def scrape(url: str) -> str:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode()

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            web_metrics = scrape(f"http://127.0.0.1:{port}/metrics")
            if 'gpux_workers_up{queue="inference.cpu"} 1.0' in web_metrics:
                break
            time.sleep(0.5)
        assert 'gpux_workers_up{queue="inference.cpu"} 1.0' in web_metrics, web_metrics[-2000:]
        assert 'gpux_workers_up{queue="sync"} 1.0' in web_metrics
        assert 'gpux_queue_messages{queue="default"}' in web_metrics
        assert 'view="org-audit-export"' in web_metrics, "requests are counted by route name"
        assert scrape(f"http://127.0.0.1:{METRICS_PORT_BASE}/metrics") is not None
        assert (tmp_path / "var" / "metrics" / "web").is_dir()
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


ROLL_UP_AGAIN = """
from datetime import timedelta
from django.utils import timezone
from apps.accounts.models import User
from apps.organizations.services import create_organization
from apps.analytics.models import Granularity, UsageEvent, UsageRollup
from apps.analytics.rollups import roll_up_bucket
owner = User.objects.create_user(email="rollup@x.example", handle="rollup-owner")
org = create_organization(creator=owner, slug="rollup", name="Rollup")
hour = (timezone.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
def add(count):
    for minute in range(count):
        UsageEvent.objects.create(
            organization=org, actor=owner, kind="prediction", token_id=7, token_kind="personal", model_id=1,
            version_id=2, created_at=hour + timedelta(minutes=5 + minute),
        )
add(2)
written = [roll_up_bucket(Granularity.HOUR, hour), roll_up_bucket(Granularity.HOUR, hour)]
add(1)
written.append(roll_up_bucket(Granularity.HOUR, hour))
rows = UsageRollup.objects.filter(granularity=Granularity.HOUR, bucket_start=hour, organization=org)
print("ROLLED UP", written, sorted((row.scope, row.events) for row in rows))
"""


@pytest.mark.slow
def test_usage_rolled_up_again_on_sqlite_replaces_the_buckets_rows(prepared_var):
    """`make run`'s SQLite: an hour rolled up again (every event drained into it marks it again) replaces its rows
    with a recount. The roll-up's raw SQL got the bucket's times as the SQLite driver spells them ("...+00:00"), not
    as the ORM stores and deletes them: the second roll-up of an hour failed on the unique constraint, in the
    worker's log of a `make run` where predictions were made with a token."""
    result = embedded_shell(prepared_var, ROLL_UP_AGAIN, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "ROLLED UP [3, 3, 3] [('model', 3), ('org', 3), ('token', 3)]" in result.stdout, result.stdout[-2000:]


# --- supervision and stopping ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared_var(tmp_path_factory) -> Path:
    """A var/ folder the launcher has migrated and seeded once: the tests below start it again at once."""
    folder = tmp_path_factory.mktemp("embedded")
    log_path = folder / "prepare.log"
    process = start_embedded(folder / "var", free_port(), log_path)
    try:
        wait_for_banner(process, log_path)
    finally:
        if process.poll() is None:
            stop(process)
    return folder / "var"


class Portal:
    """A running launcher: its process, port, log and the pids its banner names."""

    def __init__(self, var_dir: Path, log_path: Path, *, new_session: bool = False) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process = start_embedded(var_dir, self.port, log_path, new_session=new_session)
        banner = wait_for_banner(self.process, log_path)
        self.pids = {
            name: int(pid) for name, pid in re.findall(r"(web|interactive worker|background worker|beat) (\d+)", banner)
        }
        self.base = f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            stop(self.process)


def assert_all_gone(pids: set[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid for pid in pids if alive(pid)}
    assert not left, f"still running after the launcher stopped: {left}"


@pytest.mark.slow
def test_two_quick_signals_stop_every_child_and_their_workers(prepared_var, tmp_path):
    portal = Portal(prepared_var, tmp_path / "run.log")
    try:
        # The Celery workers fork their pool processes as they start, which may be just after the banner (a loaded
        # full run once counted 7): wait for the whole family before signalling it.
        deadline = time.monotonic() + 30
        family = descendants(portal.process.pid)
        while len(family) < 8 and time.monotonic() < deadline:
            time.sleep(0.2)
            family = descendants(portal.process.pid)
        assert set(portal.pids.values()) <= family
        assert len(family) >= 8, "gunicorn and its 2 workers, 2 Celery workers and their pool processes, beat"

        # Two different signals at once: the old launcher's handler raised again inside its stopping code and left
        # every child running (seen 2 times in 3 tries); a third for good measure.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
            os.kill(portal.process.pid, signum)

        assert portal.process.wait(timeout=60) == 0, portal.log()[-3000:]
        assert_all_gone(family)
        assert "Traceback" not in portal.log()
    finally:
        portal.close()


@pytest.mark.slow
def test_sigterm_to_the_launchers_process_group_stops_every_child(prepared_var, tmp_path):
    portal = Portal(prepared_var, tmp_path / "run.log", new_session=True)
    try:
        family = descendants(portal.process.pid)

        os.killpg(portal.process.pid, signal.SIGTERM)
        os.killpg(portal.process.pid, signal.SIGINT)

        assert portal.process.wait(timeout=60) == 0, portal.log()[-3000:]
        assert_all_gone(family)
    finally:
        portal.close()


@pytest.mark.slow
def test_a_killed_worker_is_started_again_and_runs_the_next_job(prepared_var, tmp_path):
    portal = Portal(prepared_var, tmp_path / "run.log")
    try:
        dead = portal.pids["background worker"]
        pool = set(child_pids(dead))

        os.kill(dead, signal.SIGKILL)

        deadline = time.monotonic() + 60
        while "background worker started again" not in portal.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = portal.log()
        assert f"background worker (pid {dead}) exited with status -9" in log, log[-3000:]
        restarted = int(re.search(r"background worker started again \(pid (\d+)\)", log).group(1))
        assert restarted != dead and alive(restarted)
        assert_all_gone(pool)  # the dead worker's pool process did not stay behind
        assert portal.process.poll() is None, "the launcher went on"
        credentials = json.loads((prepared_var / "demo-credentials.json").read_text())
        exported = export_audit_trail_through_the_pages(
            portal.base, "owner@demo.local", credentials["owner@demo.local"]
        )
        assert exported.splitlines()[0].startswith("uuid,")
    finally:
        portal.close()


def api_token(var_dir: Path, email: str) -> str:
    """An API token of ``email`` in the embedded database (made the way the token service makes one)."""
    code = (
        "from apps.accounts.models import ApiToken, TokenScope, User\n"
        "raw, prefix, digest = ApiToken.generate()\n"
        f"ApiToken.objects.create(user=User.objects.get(email={email!r}), name='test', prefix=prefix, "
        "secret_hash=digest, scope=TokenScope.ADMIN)\n"
        "print(raw)\n"
    )
    out = embedded_shell(var_dir, code, timeout=120)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out.stdout.strip().splitlines()[-1]


def embedded_shell(var_dir: Path, code: str, *, timeout: float) -> subprocess.CompletedProcess:
    """``code`` run by ``manage.py shell`` on the embedded default of ``var_dir`` (its output kept, not checked)."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=embedded_env(var_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def call_api(url: str, token: str, inputs: dict) -> dict:
    """POST ``{"inputs": inputs}`` with the token; the JSON answer (the prediction waits for the worker)."""
    request = urllib.request.Request(
        url,
        data=json.dumps({"inputs": inputs, "timeout": 40}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def predict(base: str, token: str, timeout: float) -> int:
    body = json.dumps({"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}, "timeout": timeout}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/models/demo/iris-classifier/versions/1.0.0/predict",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout + 30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_pages_answer_while_more_predictions_wait_than_the_web_server_has_threads(prepared_var, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    token = api_token(prepared_var, "owner@demo.local")
    portal = Portal(prepared_var, tmp_path / "run.log")
    # The interactive worker is paused: every prediction waits its whole timeout (none can finish).
    worker = portal.pids["interactive worker"]
    paused = [worker, *child_pids(worker)]
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    waiting_predictions = 20  # 2 web processes x 8 threads = 16 threads in all
    try:
        with ThreadPoolExecutor(max_workers=waiting_predictions) as pool:
            predictions = [pool.submit(predict, portal.base, token, 20) for _ in range(waiting_predictions)]
            time.sleep(3)  # they are all in
            pages = []
            for _ in range(5):
                with urllib.request.urlopen(f"{portal.base}/accounts/login/", timeout=10) as response:
                    pages.append(response.status)
                still_waiting = sum(not prediction.done() for prediction in predictions)
                assert still_waiting > 0, "the predictions ended before the pages were asked for"
            statuses = [prediction.result() for prediction in predictions]
        assert pages == [200] * 5
        assert set(statuses) <= {200, 202}, statuses  # never a 5xx from a web worker killed mid-wait
        assert statuses.count(202) == waiting_predictions
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
        portal.close()
