"""The MLflow backend against a real ``mlflow server`` on loopback (tests/peers/mlflow.py), registered through REST.

Credentials are checked by MLflow's own basic-auth app when the peer has it; bearer tokens (which open source
MLflow does not check) and rate limiting are answered by a tiny local server.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.registries.backends.mlflow import MlflowBackend
from apps.registries.sdk import (
    BackendContext,
    ConfigurationError,
    NetworkPolicy,
    NotFound,
    RateLimited,
    Unauthorized,
    UnsafeURL,
)
from apps.registries.sdk.http import read_all
from apps.registries.sdk.testing import assert_conforms
from tests.peers.mlflow import MlflowPeer, mlflow_server  # noqa: F401  (the session fixture)
from tests.peers.olah import onnx_dataset

LOOPBACK = BackendContext(policy=NetworkPolicy(allowed=("127.0.0.1/32",)))


def backend_for(peer: MlflowPeer, **config) -> MlflowBackend:
    cleaned = MlflowBackend.clean_config({**peer.backend_config(), **config}, context=LOOPBACK)
    return MlflowBackend(cleaned, context=LOOPBACK)


@pytest.fixture(scope="module")
def registry(mlflow_server: MlflowPeer) -> MlflowPeer:  # noqa: F811
    """Three registered models: iris (two versions, an alias, tags), sigmoid (ONNX in a sub-folder), and one
    whose only version has no ONNX file."""
    iris = onnx_dataset("logreg_iris.onnx")
    mlflow_server.register_model(
        "iris-classifier",
        {"model.onnx": iris, "conda.yaml": b"name: iris\n", "requirements.txt": b"onnxruntime\n"},
        description="Classifies iris flowers.\n\nA logistic regression exported to ONNX.",
        tags={"task": "tabular-classification", "license": "mit", "mlflow.internal": "hidden"},
        version_tags={"validated": "true"},
        alias="champion",
    )
    mlflow_server.register_model("iris-classifier", {"model.onnx": iris}, alias="challenger")
    mlflow_server.register_model("sigmoid", {"graph/sigmoid.onnx": onnx_dataset("sigmoid.onnx")})
    mlflow_server.register_model("pickled", {"model.pkl": b"\x80\x04N."})
    return mlflow_server


Responder = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


class LocalServer:
    """A tiny HTTP server on 127.0.0.1 in a thread; ``respond`` answers every request, ``requests`` records them."""

    def __init__(self, respond: Responder) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                status, headers, body = respond(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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


def local_backend(server: LocalServer, **config) -> MlflowBackend:
    cleaned = MlflowBackend.clean_config({"tracking_uri": server.url, **config}, context=LOOPBACK)
    return MlflowBackend(cleaned, context=LOOPBACK)


@pytest.fixture
def refusing_server() -> Iterator[LocalServer]:
    body = b'{"error_code": "UNAUTHENTICATED", "message": "Invalid token"}'
    with LocalServer(lambda _request: (401, {"Content-Type": "application/json"}, body)) as server:
        yield server


# --- against mlflow server -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_backend_conforms_against_a_real_mlflow_server(registry: MlflowPeer):
    backend = backend_for(registry)
    backend.page_size = 1  # a page per registered model, a cursor (MLflow's page token) after each

    assert_conforms(backend, missing_model_id="there-is-no-such-model")

    pages = list(backend.iter_models())
    assert len(pages) >= 3 and all(page.cursor for page in pages[:-1]) and pages[-1].cursor is None


@pytest.mark.slow
def test_registered_model_carries_description_tags_and_versions_with_their_aliases(registry: MlflowPeer):
    model = backend_for(registry).get_model("iris-classifier")

    assert model.id == "iris-classifier"
    assert model.card == "Classifies iris flowers.\n\nA logistic regression exported to ONNX."
    assert model.summary == "Classifies iris flowers."
    assert model.task == "tabular-classification"
    assert model.license == "mit"
    assert model.tags == ("license:mit", "task:tabular-classification")  # mlflow.* tags are MLflow's, not the user's
    assert [(v.label, v.aliases) for v in model.versions] == [("1", ("champion",)), ("2", ("challenger",))]
    assert model.versions[0].metadata["tags"] == {"validated": "true"}
    assert model.versions[0].created_at.endswith("Z")


@pytest.mark.slow
def test_files_are_the_mlmodel_file_and_the_onnx_files(registry: MlflowPeer):
    backend = backend_for(registry)

    iris = {remote.path: remote for remote in backend.list_files("iris-classifier", "1")}
    sigmoid = [remote.path for remote in backend.list_files("sigmoid", "1")]

    assert sorted(iris) == ["MLmodel", "model.onnx"]  # conda.yaml and requirements.txt stay behind
    assert iris["model.onnx"].size == len(onnx_dataset("logreg_iris.onnx"))
    assert read_all(backend.open_file("iris-classifier", "1", iris["model.onnx"])) == onnx_dataset("logreg_iris.onnx")
    assert b"onnx:" in read_all(backend.open_file("iris-classifier", "1", iris["MLmodel"]))
    assert sigmoid == ["MLmodel", "graph/sigmoid.onnx"]


@pytest.mark.slow
def test_version_without_onnx_files_lists_only_its_mlmodel_file(registry: MlflowPeer):
    assert [remote.path for remote in backend_for(registry).list_files("pickled", "1")] == ["MLmodel"]


@pytest.mark.slow
def test_name_filter_selects_registered_models(registry: MlflowPeer):
    backend = backend_for(registry, name_filter="iris")

    assert [model.id for page in backend.iter_models() for model in page.models] == ["iris-classifier"]


@pytest.mark.slow
def test_missing_model_and_missing_version_are_not_found(registry: MlflowPeer):
    backend = backend_for(registry)

    with pytest.raises(NotFound):
        backend.get_model("there-is-no-such-model")
    with pytest.raises(NotFound):
        backend.list_files("iris-classifier", "99")


@pytest.mark.slow
def test_fingerprint_changes_when_a_version_is_registered(registry: MlflowPeer):
    backend = backend_for(registry)
    registry.register_model("growing", {"model.onnx": onnx_dataset("sigmoid.onnx")})
    before = backend.get_model("growing")

    registry.register_model("growing", {"model.onnx": onnx_dataset("sigmoid.onnx")})
    after = backend.get_model("growing")

    assert before.fingerprint != after.fingerprint
    assert [v.label for v in after.versions] == ["1", "2"]


@pytest.mark.slow
def test_wrong_password_is_unauthorized_with_a_clear_message(registry: MlflowPeer):
    if not registry.auth:
        pytest.skip("the MLflow peer has no basic-auth app (mlflow[auth] is not installed in var/peers/mlflow)")
    backend = backend_for(registry, password="not-the-password")

    with pytest.raises(Unauthorized, match=r"refused the request .* check the registry's username and password"):
        backend.check()


# --- against a local server ----------------------------------------------------------------------------------
def test_wrong_token_is_unauthorized_with_a_clear_message(refusing_server: LocalServer):
    backend = local_backend(refusing_server, token="wrong-token")

    with pytest.raises(Unauthorized, match="check the registry's token"):
        backend.check()

    assert refusing_server.requests[0][1]["Authorization"] == "Bearer wrong-token"


def test_username_and_password_go_as_basic_auth(refusing_server: LocalServer):
    with pytest.raises(Unauthorized):
        local_backend(refusing_server, username="alice", password="s3cret").get_model("iris")

    assert refusing_server.requests[0][1]["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()


def test_rate_limiting_is_rate_limited_with_the_retry_after_seconds():
    answer = (429, {"Retry-After": "12", "Content-Type": "application/json"}, b'{"error_code": "RATE_LIMIT"}')
    with LocalServer(lambda _request: answer) as server, pytest.raises(RateLimited) as raised:
        list(local_backend(server).iter_models())

    assert raised.value.retry_after == 12


# --- configuration -------------------------------------------------------------------------------------------
def test_loopback_tracking_uri_is_refused_by_the_default_network_policy():
    with pytest.raises(UnsafeURL) as raised:
        MlflowBackend.clean_config({"tracking_uri": "http://127.0.0.1:5000"}, context=BackendContext())

    assert raised.value.field == "tracking_uri"


def test_tracking_uri_that_is_not_http_is_a_configuration_error_naming_the_field():
    with pytest.raises(ConfigurationError) as raised:
        MlflowBackend.clean_config({"tracking_uri": "ftp://x"}, context=LOOPBACK)

    assert raised.value.field == "tracking_uri"


def test_tracking_uri_is_required():
    with pytest.raises(ConfigurationError) as raised:
        MlflowBackend.clean_config({}, context=LOOPBACK)

    assert raised.value.field == "tracking_uri"


def test_token_and_password_together_are_a_configuration_error():
    with pytest.raises(ConfigurationError) as raised:
        MlflowBackend.clean_config(
            {"tracking_uri": "http://127.0.0.1:5000", "token": "t", "username": "u", "password": "p"}, context=LOOPBACK
        )

    assert raised.value.field == "token"


def test_username_without_password_is_a_configuration_error_naming_the_password():
    with pytest.raises(ConfigurationError) as raised:
        MlflowBackend.clean_config({"tracking_uri": "http://127.0.0.1:5000", "username": "u"}, context=LOOPBACK)

    assert raised.value.field == "password"


def test_token_and_password_are_sensitive():
    assert MlflowBackend.sensitive_parameters() == ("token", "password")
