"""The W&B backend against RECORDED answers of W&B's public GraphQL API, served on loopback.

W&B cannot run here (no server to install, no internet). The answers under recordings/wandb/ are hand-written
from W&B's documented GraphQL schema and the queries of the wandb SDK's public API; they are not captured from
api.wandb.ai. A tiny HTTP server answers ``POST /graphql`` with the recorded exchange whose operation and
variables match, filters files by ``names`` as W&B does, and serves the files' direct URLs, so that the backend's
real HTTP code runs. A second server stands for the storage host of signed URLs.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from apps.registries.backends.wandb import WandbBackend
from apps.registries.sdk import (
    BackendContext,
    ChecksumMismatch,
    ConfigurationError,
    NetworkPolicy,
    NotFound,
    RateLimited,
    Unauthorized,
    UnsafeURL,
)
from apps.registries.sdk.http import read_all
from apps.registries.sdk.testing import assert_conforms
from tests.peers.olah import onnx_dataset

RECORDINGS = Path(__file__).parent / "recordings" / "wandb"
LOOPBACK = BackendContext(policy=NetworkPolicy(allowed=("127.0.0.1/32",)))
API_KEY = "local-0123456789abcdef0123456789abcdef01234567"


def recording(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / f"{name}.json").read_text())


class RecordedWandb:
    """A loopback server that answers as the recording says. ``requests`` keeps (path, headers, GraphQL body)."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script
        self.requests: list[tuple[str, dict[str, str], dict[str, Any] | None]] = []
        self.others: dict[str, str] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server.requests.append((self.path, dict(self.headers), payload))
                self._send(*server.answer_graphql(payload))

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers), None))
                self._send(*server.answer_file(urlsplit(self.path).path))

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> RecordedWandb:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _fill(self, text: str) -> str:
        for name, url in {"api": self.url, **self.others}.items():
            text = text.replace("{{" + name + "}}", url)
        return text

    def answer_graphql(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if "status" in self.script:  # a recording of one answer to every request
            return self.script["status"], self.script["headers"], json.dumps(self.script["body"]).encode()
        variables = payload.get("variables") or {}
        for exchange in self.script["exchanges"]:
            wanted = exchange["variables"]
            if exchange["operationName"] == payload.get("operationName") and all(
                variables.get(key) == value for key, value in wanted.items()
            ):
                body = copy.deepcopy(exchange["body"])
                files = (((body.get("data") or {}).get("project") or {}).get("artifactType") or {}).get("artifact")
                if files and variables.get("fileNames") is not None:
                    # W&B's files(names:) answers only the files of those names.
                    edges = files["files"]["edges"]
                    files["files"]["edges"] = [e for e in edges if e["node"]["name"] in variables["fileNames"]]
                return 200, {"Content-Type": "application/json"}, self._fill(json.dumps(body)).encode()
        message = f"no recorded answer for {payload.get('operationName')} {variables}"
        return 500, {"Content-Type": "application/json"}, json.dumps({"errors": [{"message": message}]}).encode()

    def answer_file(self, path: str) -> tuple[int, dict[str, str], bytes]:
        source = self.script.get("files", {}).get(path)
        if source is None:
            return 404, {"Content-Type": "text/plain"}, b"no such object"
        body = onnx_dataset(source["onnx"]) if "onnx" in source else source["text"].encode()
        return 200, {"Content-Type": "application/octet-stream"}, body


@pytest.fixture
def wandb_api() -> Iterator[tuple[RecordedWandb, RecordedWandb]]:
    """The recorded API and the storage host its signed direct URLs point at."""
    script = recording("registry")
    with RecordedWandb(script) as api, RecordedWandb(script) as storage:
        api.others["storage"] = storage.url
        yield api, storage


def backend_for(base_url: str, **config: Any) -> WandbBackend:
    values = {"base_url": base_url, "api_key": API_KEY, "entity": "acme", **config}
    return WandbBackend(WandbBackend.clean_config(values, context=LOOPBACK), context=LOOPBACK)


def test_backend_conforms_against_recorded_answers(wandb_api):
    api, _ = wandb_api

    assert_conforms(backend_for(api.url, project="vision"), missing_model_id="acme/vision/there-is-no-such-model")


def test_collections_are_listed_page_by_page_with_cursors_that_resume(wandb_api):
    api, _ = wandb_api
    backend = backend_for(api.url, project="vision")

    pages = list(backend.iter_models())
    resumed = list(backend.iter_models(pages[0].cursor))

    assert [[m.id for m in page.models] for page in pages] == [["acme/vision/iris-classifier"], ["acme/vision/sigmoid"]]
    assert json.loads(pages[0].cursor) == {"project": "vision", "after": "YXJ0aWZhY3RDb2xsZWN0aW9uOjE="}
    assert pages[-1].cursor is None
    assert [m.id for page in resumed for m in page.models] == ["acme/vision/sigmoid"]


def test_without_a_project_every_project_of_the_entity_is_listed(wandb_api):
    api, _ = wandb_api
    backend = backend_for(api.url)

    assert_conforms(backend, missing_model_id="acme/vision/there-is-no-such-model")
    ids = [model.id for page in backend.iter_models() for model in page.models]
    assert ids == ["acme/vision/iris-classifier", "acme/vision/sigmoid"]  # empty-project logged no model


def test_model_has_its_versions_with_aliases_description_and_tags(wandb_api):
    api, _ = wandb_api

    model = backend_for(api.url).get_model("acme/vision/iris-classifier")

    assert model.summary == "Classifies iris flowers."
    assert model.tags == ("tabular", "onnx")
    assert [(v.label, v.aliases) for v in model.versions] == [("v0", ()), ("v1", ("latest", "production"))]
    assert model.versions[1].metadata["wandb_metadata"] == {"accuracy": 0.97, "framework": "onnx"}
    assert model.versions[1].metadata["digest"] == "4c1f7e0b9c2d4a1e8f3b6a5d7c9e0f12"
    assert model.updated_at == "2025-03-07T08:15:00"


def test_files_stream_from_their_direct_urls_and_the_api_key_never_reaches_the_storage_host(wandb_api):
    api, storage = wandb_api
    backend = backend_for(api.url, project="vision")

    files = {remote.path: remote for remote in backend.list_files("acme/vision/iris-classifier", "v1")}
    model = read_all(backend.open_file("acme/vision/iris-classifier", "v1", files["model.onnx"]))
    labels = read_all(backend.open_file("acme/vision/iris-classifier", "v1", files["labels.txt"]))

    assert sorted(files) == ["labels.txt", "model.onnx"] and files["model.onnx"].size == 670
    assert model == onnx_dataset("logreg_iris.onnx")
    assert labels == b"setosa\nversicolor\nvirginica\n"
    basic = "Basic " + base64.b64encode(f"api:{API_KEY}".encode()).decode()
    assert all(headers.get("Authorization") == basic for _, headers, _ in api.requests)
    assert storage.requests and all("Authorization" not in headers for _, headers, _ in storage.requests)


def test_a_file_whose_bytes_differ_from_the_listed_md5_is_a_checksum_mismatch(wandb_api):
    api, storage = wandb_api
    storage.script = {**storage.script, "files": {**storage.script["files"]}}
    storage.script["files"]["/wandb-artifacts/acme/labels.txt"] = {"text": "tampered\n"}
    backend = backend_for(api.url, project="vision")

    labels = backend.list_files("acme/vision/iris-classifier", "v1")[0]

    with pytest.raises(ChecksumMismatch, match="md5"):
        read_all(backend.open_file("acme/vision/iris-classifier", "v1", labels))


def test_missing_model_version_and_file_are_not_found(wandb_api):
    api, _ = wandb_api
    backend = backend_for(api.url, project="vision")

    with pytest.raises(NotFound):
        backend.get_model("acme/vision/there-is-no-such-model")
    with pytest.raises(NotFound):
        backend.list_files("acme/vision/iris-classifier", "v9")
    with pytest.raises(NotFound):
        backend.get_model("someone-else/vision/iris-classifier")


def test_wrong_api_key_is_unauthorized_with_a_clear_message():
    with RecordedWandb(recording("unauthorized")) as api:
        backend = backend_for(api.url, project="vision")

        with pytest.raises(Unauthorized, match=r"W&B refused the API key .*check the registry's api_key"):
            backend.check()


def test_rate_limiting_is_rate_limited_with_the_retry_after_seconds():
    with RecordedWandb(recording("rate_limited")) as api, pytest.raises(RateLimited) as raised:
        list(backend_for(api.url, project="vision").iter_models())

    assert raised.value.retry_after == 30


def test_loopback_base_url_is_refused_by_the_default_network_policy():
    with pytest.raises(UnsafeURL) as raised:
        WandbBackend.clean_config(
            {"base_url": "http://127.0.0.1:8080", "api_key": API_KEY, "entity": "acme"}, context=BackendContext()
        )

    assert raised.value.field == "base_url"


def test_base_url_that_is_not_http_is_a_configuration_error_naming_the_field():
    with pytest.raises(ConfigurationError) as raised:
        WandbBackend.clean_config({"base_url": "ftp://x", "api_key": API_KEY, "entity": "acme"}, context=LOOPBACK)

    assert raised.value.field == "base_url"


def test_entity_and_api_key_are_required_and_the_key_is_sensitive():
    with pytest.raises(ConfigurationError) as raised:
        WandbBackend.clean_config({"base_url": "http://127.0.0.1:1", "api_key": API_KEY}, context=LOOPBACK)

    assert raised.value.field == "entity"
    assert WandbBackend.sensitive_parameters() == ("api_key",)


def test_project_that_is_not_a_wandb_name_is_a_configuration_error():
    with pytest.raises(ConfigurationError) as raised:
        WandbBackend.clean_config(
            {"base_url": "http://127.0.0.1:1", "api_key": API_KEY, "entity": "acme", "project": "a/b"},
            context=LOOPBACK,
        )

    assert raised.value.field == "project"
