"""``FaultyRegistry``: an HTTP index server on loopback (in a thread) whose faults each test turns on.

It serves the HTTP index format (docs/registries/http-index-format.md) in both forms, over a real socket, so
the code under test meets real status codes, real ``Retry-After`` headers, real timeouts and real bytes:

- ``/index.json`` (``?page=N``): JSON pages of ``page_size`` models linked by a relative ``next``;
- ``/index.jsonl``: JSON Lines, a header line then one model a line;
- ``/files/<model id>/<version>/<path>``: the files, whose entries carry ``size`` and ``sha256``.

API::

    with FaultyRegistry(token="s3cret") as registry:      # or the ``faulty_registry`` fixture
        registry.add_model("acme/iris", files={"model.onnx": b"..."})   # or add_models(3)
        registry.url                     # the JSON pages index; registry.jsonl_url the JSON Lines one
        registry.models                  # the entries served (dicts in the index format), editable live
        registry.files                   # {URL path: bytes}
        registry.faults.status = 500     # see ``Faults``: every field is off by default
        registry.faults.rate_limit(count=2, retry_after=1)
        registry.requests                # [RecordedRequest(method, path, query, headers, status)]
        registry.requests_to("/index.json")
        registry.reset()                 # faults off, request log emptied (models and files kept)

A backend under test needs ``BackendContext(policy=NetworkPolicy(allowed=("127.0.0.1/32",)))`` to reach it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest


@dataclass
class Faults:
    """What goes wrong, per test. Everything is off by default; set fields (or call ``rate_limit``) freely.

    - ``status``: every request (index and files) answers this HTTP status with a small JSON error body.
    - ``status_for``: ``{URL path: status}`` for chosen paths only ("/index.json", a file path).
    - ``rate_limited`` / ``retry_after``: the next ``rate_limited`` requests answer 429 with ``Retry-After:
      retry_after`` (seconds, as sent; a string is sent as is, e.g. an HTTP date), then requests succeed.
    - ``hang``: seconds every request waits before answering (set it over the client's timeout); ``stop()``
      cuts the wait short so a test never waits for it.
    - ``malformed_index``: ``/index.json`` answers truncated JSON; ``/index.jsonl`` gets an unreadable second
      line (``{"id": "broken", ``) among the good ones.
    - ``endless_pages``: ``/index.json?page=N`` always links ``?page=N+1`` (a new URL each time, one new model
      ``endless/page-N`` a page): only a page cap stops it.
    - ``looping_pages``: the last JSON page links back to the first (a loop a client can detect).
    - ``missing_files``: URL paths of files that are listed but answer 404.
    - ``corrupt_files``: URL paths of files served with one byte changed (same size, wrong sha256).
    """

    status: int | None = None
    status_for: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    retry_after: float | str = 1
    hang: float = 0.0
    malformed_index: bool = False
    endless_pages: bool = False
    looping_pages: bool = False
    missing_files: set[str] = field(default_factory=set)
    corrupt_files: set[str] = field(default_factory=set)

    def rate_limit(self, *, count: int, retry_after: float | str = 1) -> None:
        """The next ``count`` requests answer 429 with ``Retry-After: retry_after``."""
        self.rate_limited = count
        self.retry_after = retry_after


@dataclass(frozen=True)
class RecordedRequest:
    """One request the registry received and the status it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int


class FaultyRegistry:
    """An HTTP index registry on 127.0.0.1 (a free port) in a background thread; see the module docstring."""

    def __init__(self, *, token: str | None = None, page_size: int = 2) -> None:
        self.token = token  # when set, requests without "Authorization: Bearer <token>" answer 401
        self.page_size = page_size
        self.models: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- content ------------------------------------------------------------------------------------------
    @staticmethod
    def file_path(model_id: str, version: str, path: str) -> str:
        """The URL path a file is served at."""
        parts = (*model_id.split("/"), version, *path.split("/"))
        return "/files/" + "/".join(quote(part, safe="") for part in parts)

    def add_model(
        self, model_id: str, *, files: dict[str, bytes] | None = None, version: str = "1", **fields: Any
    ) -> dict[str, Any]:
        """A model with one version holding ``files`` (default: a small ``model.onnx``); its entry."""
        files = files if files is not None else {"model.onnx": f"weights of {model_id}".encode() * 64}
        listed = []
        for path, content in files.items():
            url_path = self.file_path(model_id, version, path)
            self.files[url_path] = content
            listed.append(
                {"path": path, "size": len(content), "sha256": hashlib.sha256(content).hexdigest(), "url": url_path}
            )
        entry = {"id": model_id, "name": model_id.rsplit("/", 1)[-1], "versions": [{"label": version, "files": listed}]}
        entry.update(fields)
        self.models.append(entry)
        return entry

    def add_models(self, count: int, *, prefix: str = "acme/model-") -> list[dict[str, Any]]:
        return [self.add_model(f"{prefix}{number:03d}") for number in range(1, count + 1)]

    # --- addresses and log --------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("The registry is not started.")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The JSON pages index."""
        return f"{self.base_url}/index.json"

    @property
    def jsonl_url(self) -> str:
        return f"{self.base_url}/index.jsonl"

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def reset(self) -> None:
        """Faults off and the request log emptied; models, files and the token stay."""
        self.faults = Faults()
        self.requests.clear()

    # --- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> FaultyRegistry:
        registry = self

        class Handler(RegistryRequestHandler):
            owner = registry

        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True  # a hanging handler must not hold up the test run at exit
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="faulty-registry", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FaultyRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what a request gets ------------------------------------------------------------------------------
    def _take_rate_limit(self) -> bool:
        with self._lock:
            if self.faults.rate_limited > 0:
                self.faults.rate_limited -= 1
                return True
            return False

    def _json_page(self, number: int) -> dict[str, Any]:
        if self.faults.endless_pages:
            model = {"id": f"endless/page-{number}", "name": f"Page {number}"}
            return {"gpux_index": 1, "models": [model], "next": f"index.json?page={number + 1}"}
        size = self.page_size
        chunk = self.models[(number - 1) * size : number * size]
        last = number * size >= len(self.models)
        following = None if last else f"index.json?page={number + 1}"
        if last and self.faults.looping_pages:
            following = "index.json?page=1"
        return {"gpux_index": 1, "models": chunk, "next": following}

    def _jsonl(self) -> bytes:
        lines = [json.dumps({"gpux_index": 1, "name": "faulty registry"})]
        lines += [json.dumps(model) for model in self.models]
        if self.faults.malformed_index:
            lines.insert(2, '{"id": "broken", ')
        return ("\n".join(lines) + "\n").encode()


class RegistryRequestHandler(BaseHTTPRequestHandler):
    """Answers for one ``FaultyRegistry`` (``owner``), faults first."""

    owner: FaultyRegistry
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, each keep-alive answer waits ~40 ms for an ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is ``owner.requests``; stderr stays quiet

    def do_GET(self) -> None:
        registry = self.owner
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        status, headers, body = self._answer(registry, parts.path, query)
        registry.requests.append(RecordedRequest("GET", parts.path, query, dict(self.headers.items()), status))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The client may have given up (a timeout test): there is nothing to tell it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def _answer(
        self, registry: FaultyRegistry, raw_path: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], bytes]:
        faults = registry.faults
        if faults.hang and registry._stopping.wait(faults.hang):
            return 503, {}, b""
        error = {"Content-Type": "application/json"}
        if registry.token and self.headers.get("Authorization") != f"Bearer {registry.token}":
            return 401, {**error, "WWW-Authenticate": "Bearer"}, b'{"detail": "A valid token is required."}'
        if registry._take_rate_limit():
            return 429, {**error, "Retry-After": str(faults.retry_after)}, b'{"detail": "Slow down."}'
        status = faults.status_for.get(raw_path, faults.status)
        if status is not None:
            return status, error, json.dumps({"detail": f"Injected HTTP {status}."}).encode()
        if raw_path == "/index.json":
            if faults.malformed_index:
                return 200, error, b'{"gpux_index": 1, "models": [{"id": "acme/trunc'
            try:
                number = max(1, int(query.get("page", ["1"])[0]))
            except ValueError:
                return 400, error, b'{"detail": "page must be a number."}'
            return 200, error, json.dumps(registry._json_page(number)).encode()
        if raw_path == "/index.jsonl":
            return 200, {"Content-Type": "application/x-ndjson"}, registry._jsonl()
        content = registry.files.get(raw_path)
        if content is None or raw_path in faults.missing_files:
            return 404, error, b'{"detail": "No such file."}'
        if raw_path in faults.corrupt_files and content:
            content = bytes([content[0] ^ 0xFF]) + content[1:]
        return 200, {"Content-Type": "application/octet-stream"}, content


@pytest.fixture
def faulty_registry() -> Iterator[FaultyRegistry]:
    """A started ``FaultyRegistry`` with three models (``acme/model-001``...), stopped after the test."""
    registry = FaultyRegistry()
    registry.add_models(3)
    with registry:
        yield registry
