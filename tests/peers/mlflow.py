"""A real MLflow tracking server on loopback, with its model registry, proxied artifacts and basic auth.

``mlflow server`` runs from its own virtual environment (``make peers``: the full package pins dependencies the
portal must not share) with a SQLite store and a local artifacts destination, served through the tracking
server's artifact proxy (``/api/2.0/mlflow-artifacts/``). When the peer environment has MLflow's ``auth`` extra
(Flask-WTF), the server runs MLflow's own ``basic-auth`` app, so that a wrong password is refused by MLflow itself;
without it the server runs open and ``MlflowPeer.auth`` is False (tests that need auth skip).

The portal has no ``mlflow`` package: ``MlflowPeer.register_model`` registers models through the REST API as any
client would (experiment, run, artifact upload, registered model, version, alias, tags).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx
import pytest

from tests.peers import free_port

PEER_BIN = Path(__file__).resolve().parents[2] / "var" / "peers" / "mlflow" / "bin"
START_TIMEOUT = 90.0
ADMIN = "admin"

MLMODEL = """artifact_path: model
flavors:
  onnx:
    code: null
    data: model.onnx
    onnx_version: 1.17.0
    providers:
    - CPUExecutionProvider
  python_function:
    data: model.onnx
    env:
      virtualenv: python_env.yaml
    loader_module: mlflow.onnx
    python_version: 3.11.2
mlflow_version: 3.0.0
model_uuid: {uuid}
"""


@dataclass
class MlflowPeer:
    """A running tracking server: where it listens, the admin's credentials, and its log."""

    tracking_uri: str
    password: str
    auth: bool
    process: subprocess.Popen
    log: IO[bytes]
    root: Path

    @property
    def username(self) -> str:
        return ADMIN

    @property
    def credentials(self) -> tuple[str, str] | None:
        return (ADMIN, self.password) if self.auth else None

    def backend_config(self) -> dict[str, str]:
        """The MLflow backend's configuration for this server (the admin's credentials when auth is on)."""
        config = {"tracking_uri": self.tracking_uri}
        if self.auth:
            config.update(username=ADMIN, password=self.password)
        return config

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def api(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One REST call as the admin; raises with the server's answer on any error."""
        response = httpx.request(method, f"{self.tracking_uri}{path}", auth=self.credentials, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"MLflow {method} {path}: HTTP {response.status_code} {response.text[:500]}")
        return response.json() if response.content else {}

    def register_model(
        self,
        name: str,
        files: dict[str, bytes],
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        version_tags: dict[str, str] | None = None,
        alias: str | None = None,
        experiment: str = "gpux-tests",
    ) -> str:
        """A new version of registered model ``name`` whose artifacts are ``files`` under ``model/``; its number.

        The MLmodel file with an ``onnx`` flavor is added unless ``files`` has one.
        """
        experiment_id = self._experiment(experiment)
        run = self.api("POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id})["run"]
        run_id = run["info"]["run_id"]
        artifact_uri: str = run["info"]["artifact_uri"]  # mlflow-artifacts:/<experiment>/<run>/artifacts
        prefix = artifact_uri.split(":", 1)[1].lstrip("/")
        uploads = {"MLmodel": MLMODEL.format(uuid=secrets.token_hex(16)).encode(), **files}
        for path, content in uploads.items():
            url = f"/api/2.0/mlflow-artifacts/artifacts/{quote(f'{prefix}/model/{path}')}"
            response = httpx.put(f"{self.tracking_uri}{url}", content=content, auth=self.credentials, timeout=30)
            assert response.status_code == 200, response.text
        self.api("POST", "/api/2.0/mlflow/runs/update", json={"run_id": run_id, "status": "FINISHED"})
        existing = httpx.get(
            f"{self.tracking_uri}/api/2.0/mlflow/registered-models/get",
            params={"name": name},
            auth=self.credentials,
            timeout=30,
        )
        if existing.status_code == 404:
            self.api(
                "POST",
                "/api/2.0/mlflow/registered-models/create",
                json={
                    "name": name,
                    "description": description,
                    "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
                },
            )
        version = self.api(
            "POST",
            "/api/2.0/mlflow/model-versions/create",
            json={
                "name": name,
                "source": f"{artifact_uri}/model",
                "run_id": run_id,
                "tags": [{"key": k, "value": v} for k, v in (version_tags or {}).items()],
                "description": f"Version of {name}",
            },
        )["model_version"]["version"]
        if alias:
            self.api(
                "POST",
                "/api/2.0/mlflow/registered-models/alias",
                json={"name": name, "alias": alias, "version": version},
            )
        return str(version)

    def _experiment(self, name: str) -> str:
        found = httpx.get(
            f"{self.tracking_uri}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": name},
            auth=self.credentials,
            timeout=30,
        )
        if found.status_code == 200:
            return found.json()["experiment"]["experiment_id"]
        return self.api("POST", "/api/2.0/mlflow/experiments/create", json={"name": name})["experiment_id"]


def _wait_until_healthy(peer: MlflowPeer, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {peer.process.returncode}:\n{peer.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            if httpx.get(f"{peer.tracking_uri}/health", timeout=5).status_code == 200:
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"mlflow server was not healthy on port {port} within {START_TIMEOUT:.0f} s:\n{peer.output()}")


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[MlflowPeer]:
    """``mlflow server`` with basic auth on a free loopback port for the whole session; stopped by its pid."""
    mlflow = PEER_BIN / "mlflow"
    if not mlflow.exists():
        pytest.skip(f"MLflow is not installed in {PEER_BIN.parent} (run `make peers`)")
    # The basic-auth app needs Flask-WTF (``mlflow[auth]``); without it, run the server open rather than not at all.
    auth = any(PEER_BIN.parent.glob("lib/python*/site-packages/flask_wtf"))
    root = Path(tempfile.mkdtemp(prefix="gpux-mlflow-"))
    password = secrets.token_urlsafe(16)
    auth_config = root / "basic_auth.ini"
    auth_config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        f"admin_username = {ADMIN}\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    port = free_port()
    # The log goes to a file, not a pipe: a pipe nobody reads would fill up and stall the server.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
        # The basic-auth app signs its forms (CSRF) with this key and refuses to start without one.
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        # The server's own telemetry would try to reach the internet.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    process = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
            *(["--app-name", "basic-auth"] if auth else []),
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    peer = MlflowPeer(
        tracking_uri=f"http://127.0.0.1:{port}", password=password, auth=auth, process=process, log=log, root=root
    )
    try:
        _wait_until_healthy(peer, port)
        yield peer
    finally:
        # SIGTERM to the parent stops its workers too (../shared/PEERS.md).
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
