"""Artifact store benchmark: a 1 GiB file through the portal's upload and download routes, against baselines.

Run from the repository root: ``.venv/bin/python benchmarks/artifacts.py`` (or ``make bench``). It needs
PostgreSQL and Redis (``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/gpux_bench``, created and
migrated if missing; ``REDIS_URL``, default ``redis://127.0.0.1:6379/10``) and nginx (``apt-get install -y nginx``
is run when it is missing and we are root).

In one run, on one machine, with one client (this process) and the same file:

* baseline A: a Python loop that reads the file 1 MiB at a time, hashes it (SHA-256) and writes it to another file;
* the portal's resumable upload (create the session, PATCH 100 MiB chunks streamed from disk, complete), and the
  multipart route with the whole file in one request (informational: it is meant for small files);
* baseline B: nginx (sendfile on) serving the stored blob as a static file, whole and a 256 MiB range;
* the portal's download route for the same file (gunicorn, 2 sync workers, as in production), whole and the range;
* the peak RSS of the gunicorn workers during the uploads and the downloads, against their RSS at idle.

Each measurement runs ``--repeat`` times (default 3), portal and baseline interleaved; figures are medians (the
best run is shown beside). It prints one ``target <name>: <measured> (goal <goal>) ok|short`` line per target and
writes its section of benchmarks/RESULTS.md. Every process it starts is stopped by pid; the temp dir (the 1 GiB
files included) is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import update_section

REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
CHUNK = MiB
UPLOAD_CHUNK = 100 * MiB  # the chunk size docs/api/models.md shows; a server that buffered a chunk would show it
RANGE_LENGTH = 256 * MiB
MEMORY_BOUND_MB = 64
LATENCY_PROBES = 20
NGINX_UNLIMITED = "sendfile_max_chunk 0;"
GUNICORN_TIMEOUT = 60  # seconds, as gpux_portal/embedded.py runs it
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gpux_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
RESULTS_BEGIN = "<!-- benchmarks/artifacts.py: begin (generated, do not edit by hand) -->"
RESULTS_END = "<!-- benchmarks/artifacts.py: end -->"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def mb_per_s(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


# --- environment ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure_environment(workdir: Path) -> dict[str, str]:
    """The settings the portal (here and under gunicorn) runs with: production mode, files in the temp dir."""
    env = {
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        "REDIS_URL": os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        "DJANGO_SETTINGS_MODULE": "gpux_portal.settings",
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on the loopback: no redirect to https
        "GPUX_VAR_DIR": str(workdir / "var"),
        "MEDIA_ROOT": str(workdir / "var" / "media"),
        "MARKETPLACE_UPLOAD_DIR": str(workdir / "var" / "uploads"),
        "STATIC_ROOT": str(workdir / "var" / "static"),
        "DOWNLOAD_OFFLOAD": "",  # the portal streams the file itself: that is what is measured
        "LOG_LEVEL": "WARNING",
        "TMPDIR": str(workdir / "tmp"),  # Django's multipart parser spools uploads there
    }
    (workdir / "tmp").mkdir()
    (workdir / "var" / "static").mkdir(parents=True)  # WhiteNoise warns on every start without it
    os.environ.update(env)
    return env


def ensure_database(url: str) -> None:
    """Create the benchmark's database when it does not exist (PostgreSQL)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


@dataclass
class Fixture:
    org: str
    model: str
    label: str
    token: str


def create_fixture() -> Fixture:
    """A user, an organization, a model with a draft version, and a write token, through the ORM and services."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from allauth.account.models import EmailAddress

    from apps.accounts.models import ApiToken, TokenScope, User
    from apps.marketplace import services as catalog
    from apps.organizations.services import create_organization

    suffix = secrets.token_hex(4)
    user = User.objects.create_user(f"bench-{suffix}@example.com", f"bench-{suffix}", secrets.token_urlsafe(16))
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    org = create_organization(creator=user, slug=f"bench-org-{suffix}", name=f"Benchmark {suffix}")
    model = catalog.create_model(organization=org, actor=user, name="big-weights", summary="artifact benchmark")
    version = catalog.create_version(model=model, actor=user, label="1.0.0")
    raw, prefix, secret_hash = ApiToken.generate()
    ApiToken.objects.create(user=user, name="benchmark", prefix=prefix, secret_hash=secret_hash, scope=TokenScope.WRITE)
    from django.db import connections

    connections.close_all()
    return Fixture(org=org.slug, model=model.name, label=version.label, token=raw)


def ensure_nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("nginx is missing: apt-get install -y nginx")
    log("installing nginx (apt-get install -y nginx)")
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "nginx"],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("nginx") or "/usr/sbin/nginx"


def wait_for_http(port: int, path: str, process: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} while starting")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer within {timeout} s")


def start_gunicorn(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "gpux_portal.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--worker-class", "sync", "--timeout", str(GUNICORN_TIMEOUT),
        "--access-logfile", str(workdir / "gunicorn-access.log"), "--error-logfile", str(workdir / "gunicorn.log"),
        "--log-level", "warning", "--access-logformat", "%(p)s %(r)s %(s)s",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdin=subprocess.DEVNULL)
    wait_for_http(port, "/healthz", process, "gunicorn")
    return process, port


def start_worker(workdir: Path, env: dict[str, str]) -> subprocess.Popen:
    """A Celery worker on the ``default`` queue: it runs the verification job of an upload larger than
    MARKETPLACE_SYNC_COMPLETE_MAX_BYTES, as in production."""
    command = [
        sys.executable, "-m", "celery", "-A", "gpux_portal", "worker", "-Q", "default", "-P", "solo",
        "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"bench-artifacts-{os.getpid()}@%h",
        "--loglevel", "WARNING", "--logfile", str(workdir / "worker.log"),
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdin=subprocess.DEVNULL)


ROUTES = {
    "upload-create": re.compile(r"^POST /api/v1/models/.+/uploads/ "),
    "upload-chunk": re.compile(r"^PATCH /api/v1/uploads/"),
    "upload-complete": re.compile(r"^POST /api/v1/uploads/.+/complete/ "),
    "multipart": re.compile(r"^POST /api/v1/models/.+/files/"),
    "download": re.compile(r"^GET /api/v1/models/.+/files/"),
}
WARM_UP_ROUNDS = 12


def routes_served(access_log: Path) -> dict[int, set[str]]:
    """Which of ROUTES each gunicorn worker has served, from the access log (``<pid> <request line> <status>``)."""
    served: dict[int, set[str]] = {}
    with contextlib.suppress(OSError):
        for line in access_log.read_text().splitlines():
            pid, _, request = line.partition(" ")
            pid = pid.strip("<>")
            if not pid.isdigit():
                continue
            for name, pattern in ROUTES.items():
                if pattern.match(request):
                    served.setdefault(int(pid), set()).add(name)
    return served


def start_nginx(nginx: str, workdir: Path, root: Path, *, name: str, extra: str = "") -> tuple[subprocess.Popen, int]:
    """nginx in the foreground (``daemon off``) with a temp config serving ``root``; ``extra`` goes into ``http``."""
    port = free_port()
    prefix = workdir / name
    (prefix / "temp").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    temp = prefix / "temp"
    conf.write_text(
        f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    {extra}
    default_type application/octet-stream;
    client_body_temp_path {temp}/client;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""
    )
    # nginx's workers run as an unprivileged user when started as root: let them walk to the file.
    os.chmod(workdir, 0o755)
    for path in root.relative_to(workdir).parents:
        os.chmod(workdir / path, 0o755)
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o755)
    process = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")], stdin=subprocess.DEVNULL
    )
    wait_for_http(port, "/", process, "nginx")
    return process, port


def stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


# --- memory of the web workers --------------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]
    except OSError:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
        return found


def proc_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class WorkerMemory:
    """RSS of the gunicorn workers: at idle, and the peak during a phase (VmHWM after resetting it, and a 20 ms
    sampler of VmRSS as a cross-check where the kernel refuses the reset)."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.idle_kib: dict[int, int] = {}
        self.hwm_reset = True
        self._stop = threading.Event()
        self._sampled: dict[int, int] = {}
        self._thread: threading.Thread | None = None

    def workers(self) -> list[int]:
        return children_of(self.master)

    def record_idle(self) -> dict[int, int]:
        self.idle_kib = {pid: proc_kib(pid, "VmRSS") for pid in self.workers()}
        return self.idle_kib

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            for pid in self.workers():
                with contextlib.suppress(OSError, KeyError):
                    rss = proc_kib(pid, "VmRSS")
                    self._sampled[pid] = max(self._sampled.get(pid, 0), rss)

    def begin(self) -> None:
        self._sampled = {}
        for pid in self.workers():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            except OSError:
                self.hwm_reset = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def end(self) -> dict[int, dict[str, int]]:
        """Per worker: idle RSS, peak (VmHWM when it could be reset, else the sampled maximum), in KiB."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        result = {}
        for pid in self.workers():
            with contextlib.suppress(OSError, KeyError):
                hwm = proc_kib(pid, "VmHWM") if self.hwm_reset else 0
                peak = max(hwm, self._sampled.get(pid, 0))
                result[pid] = {"idle": self.idle_kib.get(pid, 0), "peak": peak, "sampled": self._sampled.get(pid, 0)}
        return result


def growth_mb(report: dict[int, dict[str, int]]) -> float:
    """The largest growth of one worker over its idle RSS (a worker that was replaced counts from its own start)."""
    growths = [(r["peak"] - r["idle"]) / 1024 for r in report.values() if r["idle"]]
    return max(growths, default=0.0)


# --- HTTP client ----------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    received: int = 0


class Client:
    """http.client, one connection per request (gunicorn's sync workers close after each)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Host": "127.0.0.1"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        conn = self._connect()
        try:
            conn.request(method, path, body=body, headers=self._headers(headers))
            response = conn.getresponse()
            data = response.read()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data, len(data))
        finally:
            conn.close()

    def json(self, method: str, path: str, payload: Any = None, expect: int = 200) -> Any:
        body = json.dumps(payload).encode() if payload is not None else None
        answer = self.request(method, path, body, {"Content-Type": "application/json"} if body else None)
        if answer.status != expect:
            raise RuntimeError(f"{method} {path}: {answer.status} {answer.body[:500]!r}")
        return json.loads(answer.body) if answer.body else None

    def download(self, path: str, headers: dict | None = None) -> Answer:
        """GET, reading the body into one reused 1 MiB buffer: bytes are counted and dropped."""
        conn = self._connect()
        try:
            conn.request("GET", path, headers=self._headers(headers))
            response = conn.getresponse()
            buffer = memoryview(bytearray(CHUNK))
            received = 0
            while True:
                n = response.readinto(buffer)
                if not n:
                    break
                received += n
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, b"", received)
        finally:
            conn.close()

    def send_stream(self, method: str, path: str, length: int, parts: Iterator[bytes], headers: dict) -> Answer:
        """A request whose body (``length`` bytes) is sent piece by piece as ``parts`` yields it."""
        conn = self._connect()
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in self._headers({**headers, "Content-Length": str(length)}).items():
                conn.putheader(name, value)
            conn.endheaders()
            for part in parts:
                conn.sock.sendall(part)
            response = conn.getresponse()
            data = response.read()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data, len(data))
        finally:
            conn.close()


def file_parts(path: Path, offset: int, length: int) -> Iterator[memoryview]:
    """``length`` bytes of ``path`` from ``offset``, read from disk 1 MiB at a time into one buffer."""
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        handle.seek(offset)
        left = length
        while left > 0:
            n = handle.readinto(view[: min(CHUNK, left)])
            if not n:
                raise RuntimeError(f"{path} ended early")
            left -= n
            yield view[:n]


# --- measurements ---------------------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    nbytes: int
    tag: str = ""  # a short name for the progress lines
    seconds: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median(self) -> float:
        return mb_per_s(self.nbytes, self.median_s)

    @property
    def best(self) -> float:
        return mb_per_s(self.nbytes, min(self.seconds))

    def describe(self) -> str:
        runs = ", ".join(f"{mb_per_s(self.nbytes, s):.0f}" for s in self.seconds)
        return f"{self.name}: median {self.median:.0f} MB/s, best {self.best:.0f} MB/s (runs: {runs})"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    os.sync()  # earlier writes are flushed before the clock starts, so one measurement does not pay for another
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def make_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left > 0:
            piece = os.urandom(min(16 * MiB, left))
            digest.update(piece)
            handle.write(piece)
            left -= len(piece)
    return digest.hexdigest()


def read_hash_write(source: Path, target: Path) -> str:
    """Baseline A: what an upload must do at least, in plain Python: read 1 MiB, hash it, write it."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "wb") as dst:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Portal:
    def __init__(self, client: Client, fixture: Fixture) -> None:
        self.client = client
        self.fixture = fixture
        self.base = f"/api/v1/models/{fixture.org}/{fixture.model}/versions/{fixture.label}"
        self.verified_by_job = 0  # uploads whose completion answered 202 and was verified by the worker

    def resumable_upload(self, source: Path, path: str, size: int, sha256: str, timings: dict | None = None) -> dict:
        """Session, chunks of UPLOAD_CHUNK bytes, complete; ``timings`` gets each step's seconds."""
        t0 = time.perf_counter()
        session = self.client.json(
            "POST", f"{self.base}/uploads/", {"path": path, "size": size, "sha256": sha256}, expect=201
        )
        upload = f"/api/v1/uploads/{session['uuid']}/"
        t1 = time.perf_counter()
        offset = 0
        chunk_seconds = []
        while offset < size:
            length = min(UPLOAD_CHUNK, size - offset)
            c0 = time.perf_counter()
            answer = self.client.send_stream(
                "PATCH",
                upload,
                length,
                file_parts(source, offset, length),
                {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
            )
            chunk_seconds.append(time.perf_counter() - c0)
            if answer.status not in (200, 204):
                raise RuntimeError(f"PATCH at {offset}: {answer.status} {answer.body[:300]!r}")
            offset = int(answer.headers.get("upload-offset") or json.loads(answer.body)["offset"])
        t2 = time.perf_counter()
        answer = self.client.request("POST", f"{upload}complete/")
        if answer.status == 202:
            # Above MARKETPLACE_SYNC_COMPLETE_MAX_BYTES the portal verifies the bytes in a job (docs/api/models.md):
            # the upload is done when the session says so, which is what a client waits for.
            done = self.wait_until_completed(upload)
            self.verified_by_job += 1
        elif answer.status == 201:
            done = json.loads(answer.body)
        else:
            raise RuntimeError(f"POST {upload}complete/: {answer.status} {answer.body[:500]!r}")
        t3 = time.perf_counter()
        if done.get("sha256", sha256) != sha256:
            raise RuntimeError(f"the portal stored {done.get('sha256')}, not {sha256}")
        if timings is not None:
            timings.update(create=t1 - t0, chunks=t2 - t1, complete=t3 - t2, chunk_seconds=chunk_seconds)
        return done

    def wait_until_completed(self, upload: str, timeout: float = 600) -> dict:
        """Poll the upload session until its verification job has added the file; the file's answer then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            session = self.client.json("GET", upload)
            if session["status"] == "completed":
                return session.get("file") or session
            if session["status"] in ("failed", "aborted", "expired"):
                raise RuntimeError(f"the upload's verification ended {session['status']}: {session.get('error')!r}")
            time.sleep(0.05)
        raise RuntimeError(f"the upload at {upload} was not verified within {timeout} s")

    def multipart_upload(self, source: Path, path: str, size: int, sha256: str) -> Answer:
        boundary = "bench" + secrets.token_hex(12)
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n{path}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def parts() -> Iterator[bytes]:
            yield head
            yield from file_parts(source, 0, size)
            yield tail

        return self.client.send_stream(
            "POST",
            f"{self.base}/files/?sha256={sha256}",
            len(head) + size + len(tail),
            parts(),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

    def file_url(self, path: str) -> str:
        return f"{self.base}/files/{path}"


def check_download(answer: Answer, expected_status: int, expected_bytes: int, what: str) -> None:
    if answer.status != expected_status or answer.received != expected_bytes:
        raise RuntimeError(f"{what}: status {answer.status}, {answer.received} bytes (expected {expected_bytes})")


# --- report ---------------------------------------------------------------------------------------------------


def machine_description() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kib / 1024**2:.1f} GiB"
    nginx_version = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        nginx_version = subprocess.run(
            [shutil.which("nginx") or "/usr/sbin/nginx", "-v"], capture_output=True, text=True
        ).stderr.strip()
    import django
    import gunicorn

    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "software": f"Django {django.get_version()}, gunicorn {gunicorn.__version__}, {nginx_version}",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def write_results(path: Path, body: str) -> None:
    update_section(path, RESULTS_BEGIN, RESULTS_END, body)


# --- main -----------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the copy and upload measurements (default 3)")
    parser.add_argument("--download-repeat", type=int, default=7, help="runs of each whole download (default 7)")
    parser.add_argument("--range-repeat", type=int, default=15, help="runs of each ranged download (default 15)")
    parser.add_argument("--no-multipart", action="store_true", help="skip the (informational) multipart upload")
    parser.add_argument(
        "--results", default=str(REPO / "benchmarks" / "RESULTS.md"), help="where to write the section ('' = nowhere)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a run of seconds that proves the script still works (make test): 24 MiB, one run of each, the "
        "verification job's path taken from 8 MiB up, no RESULTS.md; its figures mean nothing",
    )
    args = parser.parse_args()
    if args.smoke:
        args.size_mib, args.repeat, args.download_repeat, args.range_repeat = 24, 1, 1, 1
        args.no_multipart, args.results = True, ""
        os.environ["MARKETPLACE_SYNC_COMPLETE_MAX_BYTES"] = str(8 * MiB)
    size = args.size_mib * MiB
    range_length = min(RANGE_LENGTH, size // 4)
    range_start = (size - range_length) // 2
    range_header = {"Range": f"bytes={range_start}-{range_start + range_length - 1}"}

    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="gpux-bench-artifacts-"))
    gunicorn_proc = nginx_proc = tuned_proc = worker_proc = None
    try:
        env = configure_environment(workdir)
        nginx = ensure_nginx()
        log(f"temp dir {workdir}; database {env['DATABASE_URL']}; redis {env['REDIS_URL']}")
        ensure_database(env["DATABASE_URL"])
        fixture = create_fixture()
        log(f"fixture: model {fixture.org}/{fixture.model} version {fixture.label}, write token")

        source = workdir / "source.bin"
        t, sha256 = timed(lambda: make_random_file(source, size))
        log(f"{args.size_mib} MiB of random bytes written in {t:.1f} s (sha256 {sha256[:16]}…)")
        t_client_hash, check = timed(lambda: sha256_of(source))
        assert check == sha256
        client_hash = Series("client SHA-256 of the file (the upload protocol declares it first)", size)
        client_hash.seconds.append(t_client_hash)

        worker_proc = start_worker(workdir, env)
        gunicorn_proc, portal_port = start_gunicorn(workdir, env)
        portal = Portal(Client(portal_port, fixture.token), fixture)
        memory = WorkerMemory(gunicorn_proc.pid)
        log(f"gunicorn on 127.0.0.1:{portal_port}, workers {memory.workers()}")

        # Warm up: every worker serves every route measured (imports, connections) before the idle RSS is taken,
        # or a worker's first-time imports would count as growth. The access log says which worker served what.
        small = workdir / "small.bin"
        small_sha = make_random_file(small, 2 * MiB)
        covered: dict[int, set[str]] = {}
        for n in range(WARM_UP_ROUNDS):
            portal.resumable_upload(small, f"warm-resumable-{n}.bin", 2 * MiB, small_sha)
            answer = portal.multipart_upload(small, f"warm-multipart-{n}.bin", 2 * MiB, small_sha)
            if answer.status != 201:
                raise RuntimeError(f"multipart warm-up: {answer.status} {answer.body[:300]!r}")
            warm_url = portal.file_url("warm-resumable-0.bin")
            check_download(portal.client.download(warm_url), 200, 2 * MiB, "warm-up")
            check_download(portal.client.download(warm_url, {"Range": "bytes=4096-1052671"}), 206, MiB, "warm-up")
            covered = routes_served(workdir / "gunicorn-access.log")
            if all(covered.get(pid, set()) >= set(ROUTES) for pid in memory.workers()):
                break
        log(f"warm-up: {n + 1} rounds; routes served per worker: { {p: len(r) for p, r in covered.items()} }")
        time.sleep(0.5)
        idle = memory.record_idle()
        log("idle RSS of the workers: " + ", ".join(f"{pid}: {kib / 1024:.1f} MiB" for pid, kib in idle.items()))

        # (1) baseline A and (2) the resumable upload, interleaved.
        baseline_a = Series("baseline A: Python read 1 MiB + SHA-256 + write", size)
        resumable = Series(f"portal resumable upload ({UPLOAD_CHUNK // MiB} MiB chunks; create+PATCHes+complete)", size)
        resumable_e2e = Series("portal resumable upload incl. the client's SHA-256 pass", size)
        upload_steps: list[dict] = []
        memory.begin()
        for i in range(args.repeat):
            copy = workdir / "copy.bin"
            t, digest = timed(lambda: read_hash_write(source, copy))  # noqa: B023
            assert digest == sha256
            baseline_a.seconds.append(t)
            copy.unlink()
            steps: dict = {}
            t, _ = timed(lambda: portal.resumable_upload(source, f"resumable-{i}.bin", size, sha256, steps))  # noqa: B023
            resumable.seconds.append(t)
            resumable_e2e.seconds.append(t + t_client_hash)
            upload_steps.append(steps)
            log(
                f"run {i + 1}: baseline A {mb_per_s(size, baseline_a.seconds[-1]):.0f} MB/s; resumable "
                f"{mb_per_s(size, t):.0f} MB/s (create {steps['create'] * 1000:.0f} ms, "
                f"chunks {steps['chunks']:.2f} s, complete {steps['complete']:.2f} s)"
            )
        upload_memory = memory.end()
        log(f"uploads verified by the worker's job (202): {portal.verified_by_job} of {args.repeat}")

        multipart = Series("portal multipart upload, whole file in one request (informational)", size)
        multipart_memory: dict = {}
        if not args.no_multipart:
            memory.record_idle()
            memory.begin()
            t, answer = timed(lambda: portal.multipart_upload(source, "multipart-0.bin", size, sha256))
            multipart_memory = memory.end()
            if answer.status == 201:
                multipart.seconds.append(t)
                log(f"multipart: {mb_per_s(size, t):.0f} MB/s")
            else:
                multipart.notes.append(f"answered {answer.status}: {answer.body[:200]!r}")
                log(f"multipart: refused, {answer.status} {answer.body[:200]!r}")
        # Both uploads may have replaced a worker (a timeout): take the idle figure again.
        time.sleep(0.5)
        memory.record_idle()

        # (3) nginx and (4) the portal's download route, the same stored file, interleaved.
        from apps.marketplace.models import blob_storage_name

        media = Path(env["MEDIA_ROOT"])
        stored = media / blob_storage_name(sha256)
        if not stored.exists():
            raise RuntimeError(f"the stored blob {stored} is missing")
        nginx_proc, nginx_port = start_nginx(nginx, workdir, media, name="nginx")
        static = Client(nginx_port)
        # The same, without nginx's default 2 MiB cap per sendfile() call (the portal's gunicorn has none).
        tuned_proc, tuned_port = start_nginx(nginx, workdir, media, name="nginx-unlimited", extra=NGINX_UNLIMITED)
        tuned = Client(tuned_port)
        static_url = "/" + blob_storage_name(sha256)
        portal_url = portal.file_url("resumable-0.bin")
        # Correctness, outside the clock: a range from each server equals the file's bytes.
        with open(source, "rb") as handle:
            handle.seek(range_start)
            expected = handle.read(MiB)
        probe = {"Range": f"bytes={range_start}-{range_start + MiB - 1}"}
        servers = (
            ("nginx", static, static_url),
            ("nginx-unlimited", tuned, static_url),
            ("portal", portal.client, portal_url),
        )
        for name, client, url in servers:
            answer = client.request("GET", url, headers=probe)
            if answer.status != 206 or answer.body != expected:
                raise RuntimeError(f"{name} served wrong bytes for {probe}: {answer.status}")
        head = portal.client.request("HEAD", portal_url)
        if head.headers.get("etag") != f'"{sha256}"':
            raise RuntimeError(f"portal ETag {head.headers.get('etag')}")

        nginx_whole = Series("baseline B: nginx static file, whole", size, "whole: nginx")
        portal_whole = Series("portal download route, whole", size, "portal")
        mib = range_length // MiB
        nginx_range = Series(f"baseline B: nginx static file, {mib} MiB range", range_length, "range: nginx")
        tuned_whole = Series(f"nginx with `{NGINX_UNLIMITED}`, whole (informational)", size, "nginx-unlimited")
        tuned_range = Series(
            f"nginx with `{NGINX_UNLIMITED}`, {mib} MiB range (informational)", range_length, "nginx-unlimited"
        )
        portal_range = Series(f"portal download route, {mib} MiB range", range_length, "portal")
        static.download(static_url)  # the file is in the page cache for both
        # What a request costs besides its bytes: a 1-byte range, many times, from each server.
        latency: dict[str, list[float]] = {"nginx": [], "portal": []}
        one_byte = {"Range": f"bytes={range_start}-{range_start}"}
        os.sync()  # the uploads' writes are on disk: the probes do not wait behind their writeback
        for _ in range(LATENCY_PROBES):
            for name, client, url in (("nginx", static, static_url), ("portal", portal.client, portal_url)):
                t0 = time.perf_counter()
                check_download(client.download(url, one_byte), 206, 1, f"{name} 1-byte range")
                latency[name].append(time.perf_counter() - t0)
        latency_ms = {name: statistics.median(values) * 1000 for name, values in latency.items()}
        log(
            f"1-byte range request, median of {LATENCY_PROBES}: nginx {latency_ms['nginx']:.1f} ms, portal "
            f"{latency_ms['portal']:.1f} ms"
        )
        memory.begin()
        whole_runs = (
            (nginx_whole, static, static_url, None, 200, size),
            (tuned_whole, tuned, static_url, None, 200, size),
            (portal_whole, portal.client, portal_url, None, 200, size),
        )
        range_runs = (
            (nginx_range, static, static_url, range_header, 206, range_length),
            (tuned_range, tuned, static_url, range_header, 206, range_length),
            (portal_range, portal.client, portal_url, range_header, 206, range_length),
        )
        for i in range(max(args.download_repeat, args.range_repeat)):
            runs = (whole_runs if i < args.download_repeat else ()) + (range_runs if i < args.range_repeat else ())
            for series, client, url, headers, status, nbytes in runs:
                t, answer = timed(lambda: client.download(url, headers))  # noqa: B023
                check_download(answer, status, nbytes, series.name)
                series.seconds.append(t)
            log(
                f"run {i + 1}: "
                + ", ".join(f"{s.tag} {mb_per_s(s.nbytes, s.seconds[-1]):.0f}" for s, *_ in runs)
                + " MB/s"
            )
        download_memory = memory.end()

        # --- figures and targets ---
        upload_growth = growth_mb(upload_memory)
        download_growth = growth_mb(download_memory)
        multipart_growth = growth_mb(multipart_memory) if multipart_memory else 0.0
        web_growth = max(upload_growth, download_growth, multipart_growth)
        targets = [
            ("download_whole_vs_nginx", portal_whole.median / nginx_whole.median, ">=", 0.8),
            ("download_range_vs_nginx", portal_range.median / nginx_range.median, ">=", 0.8),
            ("upload_vs_read_hash_write", resumable.median / baseline_a.median, ">=", 0.5),
            ("web_memory_growth_mb", web_growth, "<=", MEMORY_BOUND_MB),
        ]
        all_series = [baseline_a, resumable, resumable_e2e, client_hash]
        if multipart.seconds or multipart.notes:
            all_series.append(multipart)
        all_series += [nginx_whole, tuned_whole, portal_whole, nginx_range, tuned_range, portal_range]
        informational = [
            (f"portal / nginx with `{NGINX_UNLIMITED}`, whole", portal_whole.median / tuned_whole.median),
            (f"portal / nginx with `{NGINX_UNLIMITED}`, range", portal_range.median / tuned_range.median),
            ("resumable upload incl. the client's SHA-256 pass / baseline A", resumable_e2e.median / baseline_a.median),
        ]
        print()
        print(
            f"File: {size} bytes ({args.size_mib} MiB); MB/s = 10^6 bytes/s; medians of {args.repeat} runs (copy, "
            f"uploads), {args.download_repeat} (whole downloads) and {args.range_repeat} (ranged downloads)"
        )
        for series in all_series:
            if series.seconds:
                print("  " + series.describe())
            for note in series.notes:
                print(f"  {series.name}: {note}")
        print(
            f"  request overhead (a 1-byte range, median of {LATENCY_PROBES}): nginx {latency_ms['nginx']:.1f} ms, "
            f"portal {latency_ms['portal']:.1f} ms"
        )
        print(
            "  resumable upload steps, median: "
            f"create {statistics.median(s['create'] for s in upload_steps) * 1000:.0f} ms, "
            f"chunks {statistics.median(s['chunks'] for s in upload_steps):.2f} s, "
            f"complete {statistics.median(s['complete'] for s in upload_steps):.2f} s"
        )

        def memory_line(label: str, report: dict) -> str:
            per = "; ".join(
                f"pid {pid}: idle {r['idle'] / 1024:.1f} MiB, peak {r['peak'] / 1024:.1f} MiB"
                for pid, r in report.items()
            )
            return f"  web workers during {label}: {per}"

        print(memory_line("uploads (resumable)", upload_memory))
        if multipart_memory:
            print(memory_line("the multipart upload", multipart_memory))
        print(memory_line("downloads", download_memory))
        for label, ratio in informational:
            print(f"  {label}: {ratio:.2f} (informational)")
        if not memory.hwm_reset:
            print("  (VmHWM could not be reset: peaks are the 20 ms VmRSS samples)")
        print()
        lines = []
        for name, measured, op, goal in targets:
            passed = measured >= goal if op == ">=" else measured <= goal
            value = f"{measured:.1f}" if name.endswith("_mb") else f"{measured:.2f}"
            lines.append(f"target {name}: {value} (goal {op} {goal}) {'ok' if passed else 'short'}")

        elapsed = time.monotonic() - started
        if args.results:
            machine = machine_description()
            section = render_section(
                machine=machine,
                size=size,
                repeat=args.repeat,
                download_repeat=args.download_repeat,
                range_repeat=args.range_repeat,
                latency_ms=latency_ms,
                range_start=range_start,
                range_length=range_length,
                series=all_series,
                upload_steps=upload_steps,
                memories=[("resumable uploads", upload_memory), ("multipart upload", multipart_memory),
                          ("downloads", download_memory)],
                hwm_reset=memory.hwm_reset,
                target_lines=lines,
                informational=informational,
                elapsed=elapsed,
            )  # fmt: skip
            write_results(Path(args.results), section)
            log(f"wrote {args.results}")
        log(f"done in {elapsed:.0f} s")
        for line in lines:
            print(line)
        return 0
    finally:
        stop(nginx_proc, signal.SIGQUIT)
        stop(tuned_proc, signal.SIGQUIT)
        stop(gunicorn_proc)
        stop(worker_proc)
        shutil.rmtree(workdir, ignore_errors=True)


def render_section(
    *,
    machine: dict[str, str],
    size: int,
    repeat: int,
    download_repeat: int,
    range_repeat: int,
    latency_ms: dict[str, float],
    range_start: int,
    range_length: int,
    series: list[Series],
    upload_steps: list[dict],
    memories: list[tuple[str, dict]],
    hwm_reset: bool,
    target_lines: list[str],
    informational: list[tuple[str, float]],
    elapsed: float,
) -> str:
    peak_method = (
        "VmHWM, reset through /proc/<pid>/clear_refs before the phase" if hwm_reset else "VmRSS sampled every 20 ms"
    )
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(
        f"| {s.name} | {s.median:.0f} | {s.best:.0f} | {', '.join(f'{mb_per_s(s.nbytes, x):.0f}' for x in s.seconds)} |"
        for s in series
        if s.seconds
    )
    notes = "\n".join(f"* {s.name}: {n}" for s in series for n in s.notes)
    steps = "\n".join(
        f"| {i + 1} | {s['create'] * 1000:.0f} ms | {s['chunks']:.2f} s "
        f"({', '.join(f'{c:.2f}' for c in s['chunk_seconds'])}) | {s['complete']:.2f} s |"
        for i, s in enumerate(upload_steps)
    )
    mem_rows = "\n".join(
        f"| {label} | {pid} | {r['idle'] / 1024:.1f} | {r['peak'] / 1024:.1f} | {(r['peak'] - r['idle']) / 1024:+.1f} |"
        for label, report in memories
        for pid, r in report.items()
    )
    targets = "\n".join(f"    {line}" for line in target_lines)
    extra_ratios = "\n".join(f"* {label}: {ratio:.2f}" for label, ratio in informational)
    return f"""## Artifact store: 1 GiB upload and download (`benchmarks/artifacts.py`)

Run {now} on {machine["cpu"]}, {machine["memory"]} RAM, Linux {machine["kernel"]}, Python {machine["python"]};
{machine["software"]}. Load average at the end: {machine["load"]} (the machine is shared: other work ran beside).
Whole run: {elapsed:.0f} s.

What was measured, all on this one machine, client and servers sharing its cores, over 127.0.0.1:

* one file of {size} bytes of random data; MB/s means 10^6 bytes per second; each figure is the **median** of
  {repeat} runs for the copy and the uploads, of {download_repeat} for the whole downloads and of {range_repeat}
  for the ranged ones (best and every run beside it), the portal and its baselines alternating run by run;
  `sync` before every timed run, so no run pays for the previous one's writes;
* **baseline A**: a Python loop reading 1 MiB at a time, hashing it with SHA-256 and writing it to another file
  (page cache, no fsync);
* **portal resumable upload**: `POST .../uploads/` (path, size, SHA-256), {UPLOAD_CHUNK // MiB} MiB `PATCH` chunks
  streamed from disk by `http.client` (1 MiB reads, one connection per request), `POST .../complete/`; the SHA-256
  the protocol asks for up front is computed before the clock starts (the row "incl. the client's SHA-256 pass"
  adds that pass); the **multipart** row sends the whole file as one `multipart/form-data` request (the route is
  meant for small files; informational, no target);
* **baseline B**: nginx (one worker, `sendfile on`, `tcp_nopush on`, otherwise its defaults, which include
  `sendfile_max_chunk 2m`) serving the very blob file the portal stored, as a static file (the targets compare
  with it), and a second nginx with `{NGINX_UNLIMITED}` (one sendfile() call per answer, as gunicorn
  does; informational); **portal download**:
  `GET /api/v1/models/<org>/<model>/versions/1.0.0/files/<path>` under gunicorn (2 sync workers, `--timeout
  {GUNICORN_TIMEOUT}`, `DJANGO_ENV=production`, `DOWNLOAD_OFFLOAD` off), Bearer token, PostgreSQL, Redis; the range
  is `bytes={range_start}-{range_start + range_length - 1}` ({range_length // MiB} MiB in the middle); both read
  the file from the page cache; the client reads each body into one reused 1 MiB buffer;
* **web memory**: RSS of each gunicorn worker at idle (after warm-up rounds until the access log shows that
  every worker served every route measured) and its peak
  during the phase, against its RSS at idle just before the phase ({peak_method}).

| measurement | median MB/s | best MB/s | runs MB/s |
| --- | ---: | ---: | --- |
{rows}
{notes}

What a request costs besides its bytes (a 1-byte range, median of {LATENCY_PROBES}): nginx
{latency_ms["nginx"]:.1f} ms, portal {latency_ms["portal"]:.1f} ms (token check, permission query, usage event).

Resumable upload, per run: session creation, the PATCH chunks (seconds each), completion (the server re-reads the
spool file to verify the SHA-256, then moves it into place):

| run | create | chunks | complete |
| --- | --- | --- | --- |
{steps}

| phase | worker pid | idle RSS MiB | peak RSS MiB | growth MiB |
| --- | --- | ---: | ---: | ---: |
{mem_rows}

The memory bound, {MEMORY_BOUND_MB} MiB: streaming code holds a few 1 MiB buffers (gunicorn's body reader, the
upload loop, hashing), plus allocator slack; a file read into memory shows as at least the smallest unit handled
here, a {UPLOAD_CHUNK // MiB} MiB chunk, a {range_length // MiB} MiB range or the {size // MiB} MiB file.
{MEMORY_BOUND_MB} MiB sits between the two with a wide margin on both sides.

Targets (ratios of the medians; memory: the largest growth of one worker over all phases):

{targets}

Other ratios (informational, no target):

{extra_ratios}
"""


if __name__ == "__main__":
    sys.exit(main())
