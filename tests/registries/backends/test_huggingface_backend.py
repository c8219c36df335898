"""The Hugging Face backend against a real Hub endpoint: olah serving git repositories on loopback, offline.

olah cannot list models and does not check tokens, so two things run against small local servers instead: the
Hub's listing with its ``Link`` cursor (a shim that answers ``/api/models`` the way the Hub documents it and hands
every other request to olah untouched), and the Hub's error answers (401 with ``X-Error-Message``, 429 with
``Retry-After``, 5xx, gated repositories), written from the headers huggingface_hub itself interprets.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from apps.registries.backends.huggingface import HuggingFaceBackend
from apps.registries.sdk import (
    BackendContext,
    ConfigurationError,
    NetworkPolicy,
    NotFound,
    RateLimited,
    RemoteFile,
    Unauthorized,
    Unavailable,
    UnsafeURL,
)
from apps.registries.sdk.http import read_all
from apps.registries.sdk.testing import assert_conforms
from tests.peers.olah import OlahServer, olah_server, onnx_dataset  # noqa: F401  (the session fixture)

LOOPBACK = BackendContext(policy=NetworkPolicy(allowed=("127.0.0.1/32",)))
# The Hub allow-listed by name: checking its URL then needs no DNS, which this offline machine lacks for it.
HUB = BackendContext(policy=NetworkPolicy(allowed=("huggingface.co",)))

Responder = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


class LocalServer:
    """A tiny HTTP server on 127.0.0.1 in a thread; ``respond`` answers every request, ``requests`` records them."""

    def __init__(self, respond: Responder) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                server.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = respond(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answering(status: int, headers: dict[str, str] | None = None, body: bytes = b"{}") -> Responder:
    return lambda _request: (status, {"Content-Type": "application/json", **(headers or {})}, body)


def backend_for(endpoint: str, **config) -> HuggingFaceBackend:
    cleaned = HuggingFaceBackend.clean_config({"endpoint": endpoint, **config}, context=LOOPBACK)
    return HuggingFaceBackend(cleaned, context=LOOPBACK)


@pytest.fixture
def hub(olah_server: OlahServer) -> Iterator[LocalServer]:  # noqa: F811
    """The Hub's model listing (``/api/models``, paginated by ``Link`` cursors) in front of olah.

    The shim lists the repositories olah serves, sorted by id, ``limit`` at a time, with the next page's cursor
    in a ``Link: <...>; rel="next"`` header and each repository's files as ``siblings``, as the Hub answers
    ``expand=siblings``. Every other request goes to olah as it came.
    """

    def respond(request: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(request.path)
        if parts.path != "/api/models":
            upstream = httpx.request(
                request.command,
                olah_server.endpoint + request.path,
                headers={k: v for k, v in request.headers.items() if k.lower() == "authorization"},
            )
            keep = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "location", "etag")}
            keep.update({k: v for k, v in upstream.headers.items() if k.lower().startswith("x-")})
            return upstream.status_code, keep, upstream.content
        query = parse_qs(parts.query)
        author = query.get("author", [""])[0]
        limit = int(query.get("limit", ["1000"])[0])
        start = int(query.get("cursor", ["0"])[0])
        root = olah_server.mirrors / "models"
        repos = sorted(f"{org.name}/{repo.name}" for org in root.iterdir() for repo in org.iterdir())
        repos = [repo_id for repo_id in repos if not author or repo_id.startswith(f"{author}/")]
        page = repos[start : start + limit]
        listing = [{"id": repo_id, "siblings": siblings_of(root / repo_id)} for repo_id in page]
        headers = {"Content-Type": "application/json"}
        if start + limit < len(repos):
            following = {**{k: v[0] for k, v in query.items()}, "cursor": str(start + limit)}
            headers["Link"] = f'<{shim.url}/api/models?{urlencode(following)}>; rel="next"'
        return 200, headers, json.dumps(listing).encode()

    with LocalServer(respond) as shim:
        yield shim


def siblings_of(repo: Path) -> list[dict[str, str]]:
    return [
        {"rfilename": str(path.relative_to(repo))}
        for path in sorted(repo.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(repo).parts
    ]


# --- against olah --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_backend_conforms_against_olah_serving_an_explicit_list_of_repositories(olah_server: OlahServer):  # noqa: F811
    backend = backend_for(
        olah_server.endpoint,
        repositories=["acme/iris-classifier", "acme/sigmoid", "acme/safetensors-only", "acme/deleted-since"],
    )
    backend.page_size = 1  # four pages, three cursors to resume from

    report = assert_conforms(backend, missing_model_id="acme/there-is-no-such-model")

    assert "2 models in 4 pages" in report.summary()


@pytest.mark.slow
def test_repository_without_onnx_files_is_skipped(olah_server: OlahServer):  # noqa: F811
    backend = backend_for(olah_server.endpoint, repositories=["acme/safetensors-only", "acme/iris-classifier"])

    ids = [model.id for page in backend.iter_models() for model in page.models]

    assert ids == ["acme/iris-classifier"]


@pytest.mark.slow
def test_model_carries_its_card_license_tags_and_task_from_the_readme_front_matter(olah_server: OlahServer):  # noqa: F811
    model = backend_for(olah_server.endpoint).get_model("acme/iris-classifier")

    assert model.license == "mit"
    assert model.tags == ("onnx", "tabular-classification")
    assert model.task == "tabular-classification"
    assert model.card.startswith("# Iris classifier\n")
    assert "---" not in model.card
    assert model.summary == "A logistic regression over the four iris measurements, exported to ONNX."
    assert model.url == f"{olah_server.endpoint}/acme/iris-classifier"


@pytest.mark.slow
def test_version_is_the_pinned_revisions_commit_with_the_revision_as_alias(olah_server: OlahServer):  # noqa: F811
    first = olah_server.add_repository("moving/model", {"model.onnx": onnx_dataset("sigmoid.onnx")})
    backend = backend_for(olah_server.endpoint)

    before = backend.get_model("moving/model")
    second = olah_server.add_repository("moving/model", {"README.md": "# Moving\n\nNow with a card.\n"})
    after = backend.get_model("moving/model")

    assert [(v.label, v.aliases) for v in before.versions] == [(first[:12], ("main",))]
    assert [(v.label, v.aliases) for v in after.versions] == [(second[:12], ("main",))]
    assert before.fingerprint != after.fingerprint
    assert before.fingerprint.startswith(first)


@pytest.mark.slow
def test_files_are_those_matching_the_patterns_and_stream_their_bytes(olah_server: OlahServer):  # noqa: F811
    backend = backend_for(olah_server.endpoint)
    model = backend.get_model("acme/iris-classifier")
    version = model.versions[0].label

    files = {remote.path: remote for remote in backend.list_files("acme/iris-classifier", version)}

    assert sorted(files) == ["README.md", "config.json", "model.onnx"]  # train.py is not an imported pattern
    iris = onnx_dataset("logreg_iris.onnx")
    assert files["model.onnx"].size == len(iris)
    assert read_all(backend.open_file("acme/iris-classifier", version, files["model.onnx"])) == iris


@pytest.mark.slow
def test_file_patterns_choose_which_files_a_version_has(olah_server: OlahServer):  # noqa: F811
    backend = backend_for(olah_server.endpoint, file_patterns=["*.onnx"])

    model = backend.get_model("acme/sigmoid")

    assert [remote.path for remote in model.versions[0].files] == ["onnx/model.onnx"]


@pytest.mark.slow
def test_a_file_outside_the_patterns_is_not_found_even_if_the_repository_has_it(olah_server: OlahServer):  # noqa: F811
    backend = backend_for(olah_server.endpoint)
    version = backend.get_model("acme/iris-classifier").versions[0]

    with pytest.raises(NotFound):
        read_all(backend.open_file("acme/iris-classifier", version.label, RemoteFile("train.py", locator="")))


@pytest.mark.slow
def test_missing_repository_is_not_found_although_the_hub_answers_401(olah_server: OlahServer):  # noqa: F811
    backend = backend_for(olah_server.endpoint)

    with pytest.raises(NotFound, match="RepoNotFound"):
        backend.get_model("acme/there-is-no-such-model")


@pytest.mark.slow
def test_listing_the_hub_follows_its_link_cursor_and_skips_repositories_without_onnx(hub: LocalServer):
    backend = backend_for(hub.url, author="acme")
    backend.page_size = 1

    pages = list(backend.iter_models())
    report = assert_conforms(backend, missing_model_id="acme/there-is-no-such-model")

    assert [model.id for page in pages for model in page.models] == ["acme/iris-classifier", "acme/sigmoid"]
    assert all(page.cursor.startswith("hub:") for page in pages[:-1]) and pages[-1].cursor is None
    assert report.passed
    listing = [path for method, path, _ in hub.requests if path.startswith("/api/models?")]
    assert all("author=acme" in path and "filter=onnx" in path and "limit=1" in path for path in listing)


@pytest.mark.slow
def test_a_bare_repository_name_is_taken_under_the_author(olah_server: OlahServer):  # noqa: F811
    backend = backend_for(olah_server.endpoint, author="acme", repositories=["sigmoid", "acme/iris-classifier"])

    assert backend.config["repositories"] == ["acme/iris-classifier", "acme/sigmoid"]
    assert [m.id for page in backend.iter_models() for m in page.models] == ["acme/iris-classifier", "acme/sigmoid"]


# --- the Hub's error answers ---------------------------------------------------------------------------------
def test_wrong_token_is_unauthorized_with_a_clear_message():
    refuse = answering(401, {"X-Error-Message": "Invalid credentials in Authorization header"})
    with LocalServer(refuse) as server:
        backend = backend_for(server.url, token="hf_wrong", repositories=["acme/iris-classifier"])

        with pytest.raises(Unauthorized, match=r"refused the token .*Invalid credentials in Authorization header"):
            backend.check()

    assert server.requests[0][2]["Authorization"] == "Bearer hf_wrong"


def test_gated_repository_is_unauthorized_and_says_to_accept_its_terms():
    gated = answering(403, {"X-Error-Code": "GatedRepo"})
    with LocalServer(gated) as server, pytest.raises(Unauthorized, match="gated repository"):
        backend_for(server.url, token="hf_token").get_model("acme/gated")


def test_rate_limiting_is_rate_limited_with_the_retry_after_seconds():
    with LocalServer(answering(429, {"Retry-After": "17"})) as server, pytest.raises(RateLimited) as raised:
        backend_for(server.url).get_model("acme/iris-classifier")

    assert raised.value.retry_after == 17


def test_server_error_is_unavailable():
    with LocalServer(answering(503, {"Retry-After": "5"})) as server, pytest.raises(Unavailable):
        list(backend_for(server.url, author="acme").iter_models())


def test_missing_file_is_not_found_when_the_hub_says_entry_not_found():
    with LocalServer(answering(404, {"X-Error-Code": "EntryNotFound"})) as server:
        backend = backend_for(server.url)
        missing = RemoteFile("model.onnx", locator="0" * 40)

        with pytest.raises(NotFound, match="EntryNotFound"):
            read_all(backend.open_file("acme/iris-classifier", "000000000000", missing))

    assert server.requests[0][1] == "/acme/iris-classifier/resolve/" + "0" * 40 + "/model.onnx"


def test_no_token_sends_no_authorization_header():
    with LocalServer(answering(404, {"X-Error-Code": "RepoNotFound"})) as server, pytest.raises(NotFound):
        backend_for(server.url).get_model("acme/iris-classifier")

    assert "Authorization" not in server.requests[0][2]


# --- configuration -------------------------------------------------------------------------------------------
def test_loopback_endpoint_is_refused_by_the_default_network_policy():
    with pytest.raises(UnsafeURL) as raised:
        HuggingFaceBackend.clean_config({"endpoint": "http://127.0.0.1:8090"}, context=BackendContext())

    assert raised.value.field == "endpoint"


def test_endpoint_that_is_not_http_is_a_configuration_error_naming_the_field():
    with pytest.raises(ConfigurationError) as raised:
        HuggingFaceBackend.clean_config({"endpoint": "ftp://mirror.example"}, context=LOOPBACK)

    assert raised.value.field == "endpoint"


def test_repository_that_is_not_an_id_is_a_configuration_error_naming_the_field():
    with pytest.raises(ConfigurationError) as raised:
        HuggingFaceBackend.clean_config({"repositories": ["../etc/passwd"]}, context=HUB)

    assert raised.value.field == "repositories"


def test_endpoint_defaults_to_the_hub_and_revision_to_main():
    config = HuggingFaceBackend.clean_config({}, context=HUB)

    assert config["endpoint"] == "https://huggingface.co"
    assert config["revision"] == "main"
    assert "*.onnx" in config["file_patterns"]
    assert HuggingFaceBackend.sensitive_parameters() == ("token",)
