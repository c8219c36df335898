"""What the benchmarks share: a timestamped log line, a free loopback port, a database made fresh per run, CPU by
process, processes paused while a baseline is measured, and a lean HTTP client for load generators."""

from __future__ import annotations

import collections
import contextlib
import http.client
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(url: str, *, drop_only: bool = False) -> None:
    """Drop the benchmark's PostgreSQL database (connected users forced out) and, unless ``drop_only``, make it
    again, so that every run starts from an empty portal."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def cpu_by_process(roles: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, float]]:
    """CPU seconds (user + system) used so far by each process of a role, by pid: a process belongs to the first
    role one of whose words is in its command line (``{"web": ("gunicorn",), "database": (" mydb ",)}``; a
    PostgreSQL backend's command line is its title, with the database's name)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[str, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if not command:  # kernel threads
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        for role, words in roles.items():
            if any(word in command for word in words):
                found[entry.name] = (role, (int(fields[11]) + int(fields[12])) / ticks)
                break
    return found


def cpu_spent(before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each role spent between two ``cpu_by_process`` readings: what each process present at the
    second reading used since the first (all of it for a process started in between). A process that ended in
    between is not counted."""
    spent: collections.Counter[str] = collections.Counter()
    for pid, (role, seconds) in after.items():
        spent[role] += seconds - before.get(pid, (role, 0.0))[1]
    return dict(spent)


def family(pid: int) -> list[int]:
    """``pid`` and every process descended from it (from /proc: each process's parent)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children[parent].append(int(entry.name))
    found, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        found.append(current)
        waiting.extend(children.get(current, []))
    return found


@contextlib.contextmanager
def paused(pids: list[int]) -> Iterator[None]:
    """The processes ``pids`` stopped (SIGSTOP) while the block runs, then continued: a baseline measured meanwhile
    shares the machine with nothing they do, idle work included."""
    stopped = []
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


class HttpClient:
    """A load generator's HTTP/1.1 client: one keep-alive connection per thread (the standard library's
    ``http.client``), to one server.

    A load generator shares the machine with what it measures, and its own time is in every latency it reports.
    ``requests`` (with urllib3 under it) cost this 2-core machine 1.0-1.6 ms of CPU a request, more than the portal's
    web process spends on a cached API read; a concurrency-1 prediction measured 1.2 ms faster with this client than
    with ``requests``, alternating request by request (benchmarks/RESULTS.md, eighth session). A connection the server
    closed while it was idle (gunicorn's keep-alive timeout) is opened again and the request sent once more, only
    when nothing of the answer came back, as ``requests`` does."""

    RETRIED = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)

    def __init__(self, base: str, *, timeout: float = 60.0) -> None:
        parts = urlsplit(base)
        self.host, self.port, self.timeout = parts.hostname, parts.port or 80, timeout
        self._local = threading.local()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        """The status and body of ``method path``."""
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            fresh = connection is None
            if fresh:
                connection = self._local.connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
            try:
                connection.request(method, path, body=body, headers=headers or {})
                response = connection.getresponse()
                return response.status, response.read()
            except Exception as exc:
                connection.close()  # whatever failed, the next request starts on a new connection
                self._local.connection = None
                if fresh or attempt == 2 or not isinstance(exc, self.RETRIED):
                    raise
        raise AssertionError("unreachable")

    def post(self, path: str, body: bytes, headers: dict | None = None) -> tuple[int, bytes]:
        return self.request("POST", path, body, headers)

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes]:
        return self.request("GET", path, None, headers)
