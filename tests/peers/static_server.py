"""A plain static file server on loopback (``python -m http.server``), and helpers that publish an HTTP index.

This is the simplest host the HTTP index format (docs/registries/http-index-format.md) promises to work on: no
code, no Range support, whatever Content-Type the file's suffix gives. Tests write an index and real model
files (the iris ONNX classifier that ships with onnxruntime) under ``server.root`` and point the backend at
``server.url_for(...)``.

    def test_something(static_server):
        site = static_server.site("my-test")
        entries = [site.model_entry("acme/iris", versions=("1", "2"))]
        url = site.write_jsonl(entries)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import pytest

from tests.peers import free_port

START_TIMEOUT = 15.0


def iris_model_path() -> Path:
    """The real iris logistic-regression ONNX model that ships with onnxruntime (no download)."""
    import onnxruntime.datasets

    return Path(onnxruntime.datasets.get_example("logreg_iris.onnx"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Site:
    """A directory of the static server, addressed as ``base_url``: one test's index and files."""

    directory: Path
    base_url: str

    def url_for(self, relative: str) -> str:
        return f"{self.base_url}{relative}"

    def add_file(self, relative: str, content: bytes | Path) -> dict[str, Any]:
        """A file written under the site; its entry (``path`` is the name, ``url`` relative to the site)."""
        target = self.directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content)
        return {"path": target.name, "size": target.stat().st_size, "sha256": sha256_of(target), "url": relative}

    def model_entry(
        self, model_id: str, *, versions: Iterable[str] = ("1",), explicit_urls: bool = True, **fields: Any
    ) -> dict[str, Any]:
        """A model object of the index whose versions each hold the iris model and a small ``config.json``,
        written at ``<id>/<label>/<path>`` (the format's default location, so ``explicit_urls=False`` works)."""
        entry: dict[str, Any] = {
            "id": model_id,
            "name": model_id.rsplit("/", 1)[-1].title(),
            "summary": f"{model_id}: iris species from four measurements.",
            "card": f"# {model_id}\n\nLogistic regression on the iris data set.\n",
            "task": "tabular-classification",
            "tags": ["iris", "onnx"],
            "license": "mit",
            "updated_at": "2025-01-01T00:00:00Z",
            "versions": [],
            **fields,
        }
        for label in versions:
            prefix = "/".join(quote(part, safe="") for part in (*model_id.split("/"), label))
            files = [
                self.add_file(f"{prefix}/model.onnx", iris_model_path()),
                self.add_file(f"{prefix}/config.json", json.dumps({"model": model_id, "version": label}).encode()),
            ]
            if not explicit_urls:
                for file in files:
                    file.pop("url")
            entry["versions"].append({"label": label, "aliases": [], "description": f"Version {label}", "files": files})
        return entry

    def write_jsonl(self, entries: Iterable[Any], *, name: str = "index.jsonl", header: bool = True) -> str:
        """A JSON Lines index (a header line, then one entry a line); its URL. Strings in ``entries`` are
        written as they are (to put a malformed line in)."""
        lines = []
        if header:
            lines.append(json.dumps({"gpux_index": 1, "name": "test index", "generated_at": "2025-01-01T00:00:00Z"}))
        lines += [entry if isinstance(entry, str) else json.dumps(entry) for entry in entries]
        (self.directory / name).write_text("\n".join(lines) + "\n")
        return self.url_for(name)

    def write_json_pages(self, entries: list[Any], *, page_size: int = 2, stem: str = "index") -> str:
        """A paginated JSON index: ``<stem>.json`` then ``<stem>-2.json``... linked by relative ``next``; its URL."""
        chunks = [entries[start : start + page_size] for start in range(0, len(entries), page_size)] or [[]]
        names = [f"{stem}.json"] + [f"{stem}-{number}.json" for number in range(2, len(chunks) + 1)]
        for index, (name, chunk) in enumerate(zip(names, chunks, strict=True)):
            following = names[index + 1] if index + 1 < len(names) else None
            document = {"gpux_index": 1, "models": chunk, "next": following}
            (self.directory / name).write_text(json.dumps(document, indent=2))
        return self.url_for(names[0])


@dataclass
class StaticServer:
    """A running ``python -m http.server``: its root directory and URL."""

    root: Path
    url: str
    process: subprocess.Popen
    log: IO[bytes]

    def site(self, name: str = "") -> Site:
        """A fresh directory under the root (one per test keeps tests apart)."""
        name = name or uuid.uuid4().hex[:12]
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        return Site(directory=directory, base_url=f"{self.url}/{name}/")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]


def _wait_until_listening(server: StaticServer, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"http.server exited with {server.process.returncode}:\n{server.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"http.server did not listen on port {port} within {START_TIMEOUT:.0f} s")


@pytest.fixture(scope="session")
def static_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticServer]:
    """``python -m http.server`` on a free loopback port over a temporary root, for the session; stopped by pid."""
    root = tmp_path_factory.mktemp("static-site")
    port = free_port()
    # The request log goes to a file: a pipe nobody reads would fill up and stall the server.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = StaticServer(root=root, url=f"http://127.0.0.1:{port}", process=process, log=log)
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
