"""``ExampleCatalogBackend``: a registry backend that serves a few models defined in code.

It shows the whole contract with nothing in the way: typed parameters, deterministic pages with a resumable
cursor, ``get_model`` with ``NotFound``, file listings with size and sha256, and files streamed in chunks.
The files' bytes are generated from their path, so the catalog needs no network and no disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from apps.registries.sdk import (
    ConfigurationError,
    ModelPage,
    NotFound,
    Parameter,
    RegistryBackend,
    RemoteFile,
    RemoteModel,
    RemoteVersion,
    find_version,
)

# Files are streamed in chunks this size: a real backend never holds a whole file in memory.
CHUNK_SIZE = 4096


@dataclass(frozen=True)
class CatalogEntry:
    """One model of the in-code catalog: its versions and, for each, its files' paths and sizes."""

    id: str
    name: str
    summary: str
    task: str
    tags: tuple[str, ...]
    versions: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "acme/sentiment",
        "Sentiment",
        "Tells positive from negative reviews.",
        "text-classification",
        ("nlp",),
        (("1", (("model.onnx", 10_000), ("vocab.txt", 300))), ("2", (("model.onnx", 12_000),))),
    ),
    CatalogEntry(
        "acme/digits",
        "Digits",
        "Reads handwritten digits.",
        "image-classification",
        ("vision",),
        (("1", (("model.onnx", 5_000),)),),
    ),
    CatalogEntry(
        "acme/anomalies",
        "Anomalies",
        "Flags unusual sensor readings.",
        "tabular-classification",
        ("tabular",),
        (("1", (("model.onnx", 2_048),)),),
    ),
    CatalogEntry("acme/speech", "Speech", "Finds speech in audio.", "voice-activity-detection", ("audio",), ()),
    CatalogEntry(
        "acme/translator",
        "Translator",
        "Translates English to French.",
        "translation",
        ("nlp",),
        (("v1.0", (("encoder.onnx", 9_000), ("decoder.onnx", 9_000))),),
    ),
)


def file_bytes(model_id: str, version: str, path: str, size: int) -> Iterator[bytes]:
    """The file's content, generated deterministically in chunks: the same bytes every time."""
    seed = f"{model_id}@{version}/{path}".encode()
    produced = 0
    counter = 0
    while produced < size:
        block = hashlib.sha256(seed + counter.to_bytes(8, "big")).digest() * (CHUNK_SIZE // 32)
        block = block[: size - produced]
        produced += len(block)
        counter += 1
        yield block


def file_sha256(model_id: str, version: str, path: str, size: int) -> str:
    digest = hashlib.sha256()
    for chunk in file_bytes(model_id, version, path, size):
        digest.update(chunk)
    return digest.hexdigest()


class ExampleCatalogBackend(RegistryBackend):
    """A catalog of five models defined in code, listed ``page_size`` at a time."""

    name = "example-catalog"
    label = "Example catalog"
    description = "An example plugin: five models defined in code, for trying registry sync without a network."
    parameters = (
        Parameter("page_size", type="integer", default=2, min_value=1, max_value=100, help="Models per page."),
        Parameter("tag", help="Only models with this tag (nlp, vision, tabular, audio); empty for all."),
    )

    @classmethod
    def validate(cls, config: dict) -> None:
        known = {tag for entry in CATALOG for tag in entry.tags}
        if config.get("tag") and config["tag"] not in known:
            raise ConfigurationError("tag", f"No model has the tag “{config['tag']}”; try {', '.join(sorted(known))}.")

    def _entries(self) -> list[CatalogEntry]:
        # Sorted by id: the order must be stable for cursors to mean the same thing on every call.
        tag = self.config.get("tag")
        return sorted((entry for entry in CATALOG if not tag or tag in entry.tags), key=lambda entry: entry.id)

    def _model(self, entry: CatalogEntry) -> RemoteModel:
        versions = tuple(
            RemoteVersion(
                label=label,
                files=tuple(
                    RemoteFile(path=path, size=size, sha256=file_sha256(entry.id, label, path, size), locator=path)
                    for path, size in files
                ),
                created_at="2025-01-01T00:00:00Z",
            )
            for label, files in entry.versions
        )
        return RemoteModel(
            id=entry.id,
            name=entry.name,
            summary=entry.summary,
            card=f"# {entry.name}\n\n{entry.summary}\n",
            task=entry.task,
            tags=entry.tags,
            license="apache-2.0",
            versions=versions,
        )

    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        # The cursor is the last id of the page before: resuming after it survives models added in between.
        entries = [entry for entry in self._entries() if cursor is None or entry.id > cursor]
        size = int(self.config.get("page_size") or 2)
        if not entries:
            yield ModelPage(models=(), cursor=None)
            return
        for start in range(0, len(entries), size):
            page = entries[start : start + size]
            last = start + size >= len(entries)
            yield ModelPage(models=tuple(self._model(entry) for entry in page), cursor=None if last else page[-1].id)

    def get_model(self, model_id: str) -> RemoteModel:
        for entry in self._entries():
            if entry.id == model_id:
                return self._model(entry)
        raise NotFound(f"The example catalog has no model {model_id}.")

    def open_file(self, model_id: str, version: str, file: RemoteFile) -> Iterator[bytes]:
        remote_version = find_version(self.get_model(model_id), version)
        for listed in remote_version.files or ():
            if listed.path == file.path:
                yield from file_bytes(model_id, version, listed.path, listed.size or 0)
                return
        raise NotFound(f"{model_id}@{version} has no file {file.path}.")
