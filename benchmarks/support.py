"""What the benchmarks share: a timestamped log line, a free loopback port, and a database made fresh per run."""

from __future__ import annotations

import socket
import time
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
