"""Test plugins for the sync engine's own tests: a scriptable catalog and deliberately broken backends.

They are real ``RegistryBackend`` subclasses registered in this process (``register_backend``), not mocks:
the engine runs them exactly as it runs an installed plugin. Real registries (HTTP index, Hugging Face
through olah, MLflow, another portal) are exercised in tests/registries/backends/ and the sync tests that
use them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, ClassVar

from apps.core.jobs import Job
from apps.registries import services
from apps.registries.models import Registry, RegistrySync
from apps.registries.sdk import (
    ModelPage,
    NotFound,
    Parameter,
    RegistryBackend,
    RemoteFile,
    RemoteModel,
    RemoteVersion,
    Unavailable,
)
from apps.registries.tasks import sync_registry


def payload(model_id: str, path: str) -> bytes:
    return f"bytes of {model_id}/{path}\n".encode() * 10


def scripted_model(
    model_id: str,
    *,
    summary: str = "",
    tags: tuple[str, ...] = (),
    license: str = "mit",
    versions: tuple[str, ...] = ("1",),
    aliases: tuple[str, ...] = ("latest",),
) -> RemoteModel:
    return RemoteModel(
        id=model_id,
        name=model_id.rsplit("/", 1)[-1],
        summary=summary or f"The model {model_id}.",
        card=f"# {model_id}\n",
        tags=tags,
        license=license,
        versions=tuple(
            RemoteVersion(
                label=label,
                aliases=aliases if label == versions[-1] else (),
                files=(
                    RemoteFile(
                        path="model.onnx",
                        size=len(payload(model_id, "model.onnx")),
                        sha256=hashlib.sha256(payload(model_id, "model.onnx")).hexdigest(),
                        locator="model.onnx",
                    ),
                ),
            )
            for label in versions
        ),
    )


class ScriptedBackend(RegistryBackend):
    """Serves ``CATALOGS[config["catalog"]]`` in pages; ``FAULTS`` inject failures by page number."""

    name = "test-scripted"
    label = "Scripted (tests)"
    parameters = (Parameter("catalog", required=True), Parameter("page_size", type="integer", default=2))
    CATALOGS: ClassVar[dict[str, list[RemoteModel]]] = {}
    # catalog -> {page index: [exceptions to raise, one per call, before serving the page]}
    FAULTS: ClassVar[dict[str, dict[int, list[BaseException]]]] = {}
    CALLS: ClassVar[list[tuple[str, str | None]]] = []

    def _models(self) -> list[RemoteModel]:
        return sorted(self.CATALOGS[self.config["catalog"]], key=lambda model: model.id)

    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        self.CALLS.append((self.config["catalog"], cursor))
        models = self._models()
        size = int(self.config.get("page_size") or 2)
        start = int(cursor or 0)
        faults = self.FAULTS.get(self.config["catalog"], {})
        while start < len(models):
            page_number = start // size
            pending = faults.get(page_number)
            if pending:
                raise pending.pop(0)
            end = start + size
            yield ModelPage(
                models=tuple(models[start:end]), cursor=str(end) if end < len(models) else None, total=len(models)
            )
            start = end
        if not models:
            yield ModelPage(models=(), cursor=None, total=0)

    def get_model(self, model_id: str) -> RemoteModel:
        for model in self._models():
            if model.id == model_id:
                return model
        raise NotFound(f"no {model_id}")

    def open_file(self, model_id: str, version: str, file: RemoteFile) -> Iterator[bytes]:
        broken = self.FAULTS.get(self.config["catalog"], {}).get(-1, [])
        if model_id in [str(item) for item in broken]:
            raise Unavailable(f"{model_id} files are down")
        self.get_model(model_id)
        yield payload(model_id, file.path)


class ExplodingBackend(RegistryBackend):
    """A plugin with a bug: ``iter_models`` raises whatever ``config["raise"]`` names, after one good page."""

    name = "test-exploding"
    parameters = (Parameter("raise", type="choice", choices=("value", "system-exit", "key", "constructor")),)

    def __init__(self, config: dict[str, Any], **kwargs: Any) -> None:
        if config.get("raise") == "constructor":
            raise RuntimeError("the plugin cannot start")
        super().__init__(config, **kwargs)

    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        if cursor is None:
            yield ModelPage(models=(scripted_model("good/one"),), cursor="1")
        kind = self.config.get("raise")
        if kind == "system-exit":
            raise SystemExit(3)
        if kind == "key":
            raise KeyError("missing-field")
        raise ValueError("the plugin has a bug")

    def get_model(self, model_id: str) -> RemoteModel:
        raise NotFound(model_id)


def make_registry(org, owner, *, backend: str = "test-scripted", slug: str = "scripted", **fields: Any) -> Registry:
    config = fields.pop("config", {"catalog": slug})
    return services.create_registry(
        organization=org,
        actor=owner,
        backend=backend,
        slug=slug,
        name=fields.pop("name", slug.title()),
        config=config,
        **fields,
    )


def run_sync(registry: Registry, actor=None) -> RegistrySync:
    """Start a sync and run its job's task in this process (the real task code; no broker in between)."""
    sync = services.start_sync(registry=registry, actor=actor)
    sync_registry.run(sync.job_id)
    sync.refresh_from_db()
    sync.job = Job.objects.get(pk=sync.job_id)
    return sync
