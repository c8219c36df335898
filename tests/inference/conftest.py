"""Inference fixtures: runnable versions of real models, and real inference workers (Celery on Redis, prefork).

A runnable version holds the real model file (and tokenizer), the signature the portal's own extraction reads
from it and the manifest in its normalized form; validation is taken as passed here (its own tests run the real
job). Workers are subprocesses on ``inference.cpu`` against this test run's database, one per module: they see
committed data only, so tests that use them are ``transaction=True``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from apps.core.access import Visibility
from apps.marketplace import services as catalog
from apps.marketplace.models import Model, ModelVersion, ValidationStatus
from tests import jobs_support
from tests.inference import onnx_models

MEDIA = "inference-media"


@pytest.fixture(scope="module")
def inference_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inference")


def use_inference_storage(settings, root: Path, **more) -> Path:
    """One media folder and version cache per module under ``root``, shared with the module's worker processes
    (the files a test writes are where the worker subprocess reads them); ``more`` sets other settings."""
    settings.MEDIA_ROOT = root / MEDIA
    settings.MARKETPLACE_UPLOAD_DIR = root / "uploads"
    settings.INFERENCE_CACHE_DIR = root / "cache"
    settings.DEFAULT_STORAGE_QUOTA_BYTES = 0
    for name, value in more.items():
        setattr(settings, name, value)
    return root


@pytest.fixture(autouse=True)
def inference_storage(settings, inference_root):
    return use_inference_storage(settings, inference_root)


@dataclass
class Runnable:
    world: object

    def version(
        self,
        name: str,
        files: dict[str, Path | bytes],
        manifest: dict | None,
        *,
        visibility: str = Visibility.PRIVATE,
        label: str = "1.0.0",
        model: Model | None = None,
        organization=None,
    ) -> ModelVersion:
        """A published, validated version of ``name`` holding ``files`` (the first is the model file)."""
        member = self.world.user("member")
        if model is None:
            model = catalog.create_model(
                organization=organization or self.world.org, actor=member, name=name, visibility=visibility
            )
        version = catalog.create_version(model=model, actor=member, label=label)
        for path, content in files.items():
            data = content if isinstance(content, bytes) else Path(content).read_bytes()
            catalog.add_file(version=version, actor=member, path=path, uploaded=SimpleUploadedFile(path, data))
        model_file = next(iter(files.values()))
        signature = onnx_models.signature_of_bytes(
            model_file if isinstance(model_file, bytes) else model_file.read_bytes()
        )
        onnx_info = {"manifest": manifest} if manifest else {}
        ModelVersion.objects.filter(pk=version.pk).update(
            validation_status=ValidationStatus.PASSED, signature=signature, onnx_info=onnx_info
        )
        version.refresh_from_db()
        return catalog.publish_version(version=version, actor=member)

    def iris(self, directory: Path, **kwargs) -> ModelVersion:
        path = onnx_models.sklearn_iris_path(directory)
        return self.version(kwargs.pop("name", "iris"), {"model.onnx": path}, onnx_models.IRIS_MANIFEST, **kwargs)

    def minilm(self, **kwargs) -> ModelVersion:
        files = {"model.onnx": onnx_models.minilm_path(), "tokenizer.json": onnx_models.minilm_tokenizer_path()}
        return self.version(kwargs.pop("name", "minilm"), files, onnx_models.MINILM_MANIFEST, **kwargs)


@pytest.fixture
def runnable(world) -> Runnable:
    return Runnable(world=world)


def start_inference_worker(directory: Path, *, env: dict | None = None, **kwargs) -> jobs_support.WorkerProcess:
    """A prefork inference worker (one process) on ``inference.cpu`` (pass ``queues`` for more)."""
    worker = jobs_support.WorkerProcess(
        directory,
        # Not ``checks``: every version a test makes queues its validation job there, which a worker on it
        # would run (seconds for MiniLM) while the test waits for its own job. Webhook tests add ``default``.
        queues=kwargs.pop("queues", ("inference.cpu",)),
        pool="prefork",
        env={
            "MEDIA_ROOT": str(directory / MEDIA),
            "INFERENCE_CACHE_DIR": str(directory / "cache"),
            "GPUX_INFERENCE_THREADS": "1",
            **(env or {}),
        },
        **kwargs,
    ).start()
    return worker.wait_ready(timeout=60)


@contextlib.contextmanager
def running_inference_worker(root: Path, django_db_blocker, **kwargs) -> Iterator[jobs_support.WorkerProcess]:
    """``start_inference_worker(root, **kwargs)`` for a module's tests (a module-scoped fixture holds it), with the
    broker purged before and after; skipped without PostgreSQL and Redis (in CI, a skip fails the run)."""
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    with django_db_blocker.unblock():
        jobs_support.purge_broker()
        worker = start_inference_worker(root, **kwargs)
    try:
        yield worker
    finally:
        worker.terminate()
        worker.wait_stopped()
        with django_db_blocker.unblock():
            jobs_support.purge_broker()


@pytest.fixture(scope="module")
def inference_worker(inference_root, django_db_setup, django_db_blocker):
    """One inference worker for the module (prefetch 64, so batches can gather)."""
    with running_inference_worker(inference_root, django_db_blocker, prefetch=64) as worker:
        yield worker
