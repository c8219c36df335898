"""A real Hugging Face endpoint on loopback: olah (a Hub mirror) serving local git repositories, offline.

olah answers the Hub's HTTP API (``/api/models/<id>/revision/<rev>``, ``/tree``, ``/resolve``, ``/refs``) from
plain git repositories under ``mirrors/models/<org>/<repo>``; with ``offline = true`` it never tries to reach
huggingface.co. It cannot list models (``/api/models`` is not served) and checks no tokens (../shared/PEERS.md).
It runs from its own virtual environment (``make peers``) so that it does not pin the portal's dependencies.

The repositories are real git repositories whose files are committed as plain blobs (olah does not resolve LFS
pointers), holding real ONNX models from ``onnxruntime.datasets``, a README.md with YAML front matter, and one
repository without any ``.onnx`` file, which the Hugging Face backend must skip.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.peers import free_port

PEER_BIN = Path(__file__).resolve().parents[2] / "var" / "peers" / "olah" / "bin"
START_TIMEOUT = 60.0

IRIS_README = """---
license: mit
tags:
  - onnx
  - tabular-classification
pipeline_tag: tabular-classification
---

# Iris classifier

A logistic regression over the four iris measurements, exported to ONNX.

It answers a label and the probability of each class.
"""

MUL_README = """---
license: apache-2.0
tags:
  - onnx
---

# Sigmoid

The logistic function as a single ONNX node, kept in a sub-folder as many Hub repositories do.
"""

PLAIN_README = """---
license: mit
---

# Safetensors only

This repository holds no ONNX file.
"""


def onnx_dataset(name: str) -> bytes:
    """A real ONNX model shipped by onnxruntime (``logreg_iris.onnx``, ``mul_1.onnx``, ``sigmoid.onnx``)."""
    # Found by path, not imported: importing onnxruntime loads its native libraries for nothing.
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("onnxruntime is not installed")
    return (Path(next(iter(spec.submodule_search_locations))) / "datasets" / name).read_bytes()


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "GPUX tests",
            "GIT_AUTHOR_EMAIL": "tests@gpux.example",
            "GIT_COMMITTER_NAME": "GPUX tests",
            "GIT_COMMITTER_EMAIL": "tests@gpux.example",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(cwd),
            "PATH": "/usr/bin:/bin",
        },
    )
    return result.stdout.strip()


@dataclass
class OlahServer:
    """A running olah: its endpoint, the mirror root it serves, and its log."""

    endpoint: str
    mirrors: Path
    process: subprocess.Popen
    log: IO[bytes]
    commits: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def add_repository(self, repo_id: str, files: dict[str, bytes | str], *, message: str = "Add files") -> str:
        """Create (or add a commit to) ``models/<repo_id>`` with ``files``; answers the new commit's sha."""
        path = self.mirrors / "models" / repo_id
        if not (path / ".git").exists():
            path.mkdir(parents=True)
            _git(path, "init", "-q", "-b", "main")
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            # olah 0.5.4 reads any blob of 121-149 bytes as a possible LFS pointer and decodes it as UTF-8:
            # a binary file of that size answers HTTP 500. Refuse such fixtures here rather than debug it there.
            if 120 < len(data) < 150:
                raise ValueError(f"{name} is {len(data)} bytes: olah cannot serve files of 121-149 bytes")
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _git(path, "add", "-A")
        _git(path, "commit", "-q", "-m", message)
        sha = _git(path, "rev-parse", "HEAD")
        self.commits[repo_id] = sha
        return sha


def _wait_until_healthy(server: OlahServer, port: int) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"olah exited with {server.process.returncode}:\n{server.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            # Listening is not enough: the mirror must answer a repository it serves.
            response = httpx.get(f"{server.endpoint}/api/models/acme/iris-classifier/revision/main", timeout=5)
            if response.status_code == 200:
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"olah did not become healthy on port {port} within {START_TIMEOUT:.0f} s:\n{server.output()}")


def seed_repositories(server: OlahServer) -> None:
    """The repositories every test may rely on; tests that need more add their own under another org."""
    server.add_repository(
        "acme/iris-classifier",
        {
            "README.md": IRIS_README,
            "model.onnx": onnx_dataset("logreg_iris.onnx"),
            "config.json": '{"inputs": ["float_input"], "classes": ["setosa", "versicolor", "virginica"]}\n',
            # Not in the default file patterns: listed by the registry, left out by the backend.
            "train.py": "print('trained elsewhere')\n",
        },
    )
    server.add_repository(
        "acme/sigmoid",
        {"README.md": MUL_README, "onnx/model.onnx": onnx_dataset("sigmoid.onnx")},
    )
    server.add_repository(
        "acme/safetensors-only",
        {"README.md": PLAIN_README, "model.safetensors": b"\x00" * 64, "config.json": "{}\n"},
    )
    server.add_repository(
        "onnxmodelzoo/logreg-iris",
        {
            "README.md": "# Logistic regression on iris\n\nFrom the ONNX Model Zoo.\n",
            "logreg_iris.onnx": onnx_dataset("logreg_iris.onnx"),
        },
    )


@pytest.fixture(scope="session")
def olah_server() -> Iterator[OlahServer]:
    """olah on a free loopback port for the whole session, offline, over seeded git repositories."""
    olah_cli = PEER_BIN / "olah-cli"
    if not olah_cli.exists():
        pytest.skip(f"olah is not installed in {PEER_BIN.parent} (run `make peers`)")
    root = Path(tempfile.mkdtemp(prefix="gpux-olah-"))
    mirrors = root / "mirrors"
    mirrors.mkdir()
    port = free_port()
    config = root / "olah.toml"
    config.write_text(
        "[basic]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        f'repos-path = "{root / "repos"}"\n'
        f'mirrors-path = ["{mirrors}"]\n'
        "metadata-cache-ttl = 0\n"
        "\n[accessibility]\n"
        "offline = true\n"
    )
    # The log goes to a file, not a pipe: a pipe nobody reads would fill up and stall the server.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    server = OlahServer(endpoint=f"http://127.0.0.1:{port}", mirrors=mirrors, process=None, log=log)  # type: ignore[arg-type]
    seed_repositories(server)
    # olah writes ./logs into its working directory: give it the temporary root, not the checkout.
    server.process = subprocess.Popen(
        [str(olah_cli), "--config", str(config)], cwd=root, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_until_healthy(server, port)
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
