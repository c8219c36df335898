"""A second GPUX Portal on loopback: this same project under gunicorn, with its own PostgreSQL database.

The fixture creates a fresh database (``gpux_peer_<random>``) on the test server, migrates it, seeds it through
the project's own services (organizations, a user, an API token, models whose versions hold the real iris ONNX
model, validated by the real validation job run synchronously, then published), serves it with gunicorn on a
free port, and drops the database at the end. Redis and Celery are left out of the peer's environment: its
broker falls back to a directory, and the validation job runs in the seeding process instead of a worker.

What the seed holds (``PeerPortal.seed`` has the tokens):

- ``acme`` (the token user ``syncer`` is a viewer there): ``acme/iris`` public, versions ``1`` and ``2``
  published (alias ``production`` on ``2``), ``3`` a validated but unpublished draft; ``acme/internal``
  private, ``1`` published; ``acme/drafts`` public with only a draft (never published).
- ``rival`` (``syncer`` is not a member): ``rival/secret`` private, published; ``rival/open`` public,
  published.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.peers import free_port

PROJECT = Path(__file__).resolve().parents[2]
ADMIN_DATABASE_URL = os.environ.get("GPUX_PEER_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
START_TIMEOUT = 60.0
# Variables of the test run that must not leak into the peer: it has its own database, cache and broker.
DROPPED_ENV = ("REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL", "DATABASE_TEST_NAME", "DJANGO_SETTINGS_MODULE")


@dataclass
class PeerPortal:
    """A running second portal: its base URL, what was seeded, and its log."""

    url: str
    database: str
    seed: dict[str, Any]
    process: subprocess.Popen
    log: IO[bytes]
    env: dict[str, str] = field(repr=False, default_factory=dict)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-6000:]


# --- the seed: runs inside the peer's environment (python -c ... seed_peer()) ------------------------------------
def seed_peer() -> dict[str, Any]:
    """Fill the peer's database through the project's services; the secrets a client needs, as JSON-able data."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.accounts.models import TokenScope, User
    from apps.accounts.services import create_api_token
    from apps.core.access import Role, Visibility
    from apps.marketplace import services
    from apps.marketplace.models import ModelVersion
    from apps.marketplace.validation import run_validation
    from apps.organizations.models import Membership
    from apps.organizations.services import create_organization
    from tests.peers.static_server import iris_model_path

    iris = iris_model_path().read_bytes()

    def user(handle: str) -> User:
        return User.objects.create_user(email=f"{handle}@peer.example", handle=handle, password=uuid.uuid4().hex)

    def validated_version(model, label: str, actor) -> ModelVersion:
        version = services.create_version(model=model, actor=actor, label=label, changelog=f"Version {label}.")
        services.add_file(version=version, actor=actor, path="model.onnx", uploaded=SimpleUploadedFile("m", iris))
        config = json.dumps({"model": str(model), "version": label}).encode()
        services.add_file(
            version=version, actor=actor, path="config/labels.json", uploaded=SimpleUploadedFile("c", config)
        )
        version.refresh_from_db()
        # The job a worker would run, run here: the real checker and ONNX Runtime decide "passed".
        run_validation(version.validation_job)
        version.refresh_from_db()
        if version.validation_status != "passed":
            raise RuntimeError(f"{model}@{label} did not pass validation: {version.validation_message}")
        return version

    def published(model, label: str, actor) -> ModelVersion:
        return services.publish_version(version=validated_version(model, label, actor), actor=actor)

    alice = user("alice")  # owns acme
    rachel = user("rachel")  # owns rival
    syncer = user("syncer")  # the federation account: a viewer of acme only
    acme = create_organization(creator=alice, slug="acme", name="Acme")
    rival = create_organization(creator=rachel, slug="rival", name="Rival")
    Membership.objects.create(organization=acme, user=syncer, role=Role.VIEWER)

    iris_model = services.create_model(
        organization=acme,
        actor=alice,
        name="iris",
        summary="Iris species from four measurements.",
        card="# Iris\n\nLogistic regression on the iris data set.\n",
        task="tabular-classification",
        tags=["iris", "tabular"],
        license="mit",
        visibility=Visibility.PUBLIC,
    )
    published(iris_model, "1", alice)
    second = published(iris_model, "2", alice)
    services.set_alias(model=iris_model, actor=alice, name="production", version=second)
    validated_version(iris_model, "3", alice)  # validated, never published
    internal = services.create_model(organization=acme, actor=alice, name="internal", visibility=Visibility.PRIVATE)
    published(internal, "1", alice)
    drafts = services.create_model(organization=acme, actor=alice, name="drafts", visibility=Visibility.PUBLIC)
    services.create_version(model=drafts, actor=alice, label="0.1")
    secret = services.create_model(organization=rival, actor=rachel, name="secret", visibility=Visibility.PRIVATE)
    published(secret, "1", rachel)
    open_model = services.create_model(organization=rival, actor=rachel, name="open", visibility=Visibility.PUBLIC)
    published(open_model, "1", rachel)

    _, syncer_token = create_api_token(user=syncer, name="federation", scope=TokenScope.READ)
    _, rival_token = create_api_token(user=rachel, name="federation", scope=TokenScope.READ)
    return {"syncer_token": syncer_token, "rival_token": rival_token}


# --- the fixture -------------------------------------------------------------------------------------------------
def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as connection:
        connection.execute(sql)


def _run(command: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def _wait_until_serving(peer: PeerPortal) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise RuntimeError(f"The peer portal exited with {peer.process.returncode}:\n{peer.output()}")
        try:
            if httpx.get(f"{peer.url}/api/v1/models/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"The peer portal did not answer within {START_TIMEOUT:.0f} s:\n{peer.output()}")


@pytest.fixture(scope="session")
def peer_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerPortal]:
    """A second portal (gunicorn, its own database), seeded as the module docstring says; for the session."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    database = f"gpux_peer_{uuid.uuid4().hex[:12]}"
    base = ADMIN_DATABASE_URL.rsplit("/", 1)[0]
    var_dir = tmp_path_factory.mktemp("peer-portal")
    env = {key: value for key, value in os.environ.items() if key not in DROPPED_ENV}
    env.update(
        DATABASE_URL=f"{base}/{database}",
        DJANGO_ENV="test",
        DJANGO_SETTINGS_MODULE="gpux_portal.settings",
        GPUX_VAR_DIR=str(var_dir),
        SECRET_KEY=f"peer-{uuid.uuid4().hex}{uuid.uuid4().hex}",
        PYTHONPATH=str(PROJECT),
    )
    _admin(f'CREATE DATABASE "{database}"')
    process = None
    log = tempfile.TemporaryFile()  # noqa: SIM115  (a file, not a pipe: an unread pipe would stall gunicorn)
    try:
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env, "migrate")
        script = (
            "import django, json; django.setup(); "
            "from tests.peers.portal import seed_peer; print(json.dumps(seed_peer()))"
        )
        seed = json.loads(_run([sys.executable, "-c", script], env, "seeding").strip().splitlines()[-1])
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "gpux_portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
            cwd=PROJECT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        peer = PeerPortal(
            url=f"http://127.0.0.1:{port}", database=database, seed=seed, process=process, log=log, env=env
        )
        _wait_until_serving(peer)
        yield peer
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()
        _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
