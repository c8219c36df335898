"""A real S3-compatible HTTP server on loopback: moto's standalone server (``python -m moto.server``).

moto's server speaks the S3 REST protocol over HTTP (SigV4 signatures, multipart uploads, ranged GETs, presigned
URLs); the code under test talks to it through boto3 and django-storages exactly as it would talk to AWS, MinIO or
Ceph. Nothing in the client is patched. MinIO would be the closer production peer, but its server is neither on PyPI
nor in Debian here, so it cannot be installed the ordinary way; moto (``moto[server]`` in the ``test`` extra) can.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pytest

from tests.peers import free_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
START_TIMEOUT = 30.0


@dataclass
class S3Server:
    """A running moto server: where it listens and how to reach it."""

    endpoint_url: str
    process: subprocess.Popen
    log: IO[bytes]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def create_bucket(self, prefix: str = "gpux") -> str:
        """A new, empty bucket (one per test keeps tests apart)."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_options(self, bucket: str) -> dict:
        """``STORAGES["default"]["OPTIONS"]`` for django-storages' S3Storage against this server."""
        return {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint_url,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "region_name": REGION,
            "addressing_style": "path",
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 600,
            "file_overwrite": True,
        }


def _wait_until_listening(server: S3Server, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"moto server exited with {server.process.returncode}:\n{server.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not listen on port {port} within {START_TIMEOUT:.0f} s")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server as a subprocess on a free loopback port for the whole session; stopped by its pid."""
    pytest.importorskip("moto.server", reason='moto[server] (the "test" extra) is not installed')
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    # The request log goes to a file, not a pipe: a pipe nobody reads would fill up and stall the server.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = S3Server(endpoint_url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_until_listening(server, port)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
