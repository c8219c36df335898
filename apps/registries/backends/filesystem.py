"""``FileSystemBackend``: models on a mounted volume, laid out as ``<root>/<model id>/<version>/<files>``.

The layout (docs/registries/backends.md, "File system"): a model directory is one that holds a metadata file
(``model.json``, ``gpux.yml`` or ``gpux.yaml``) or a subdirectory with at least one file of its own (a
``README.md`` beside them is the model card); its subdirectories are its versions; the model id is its path
under the root (``acme/iris``). Nothing is read outside the root: ``..`` is refused, symbolic links are
resolved and followed only when they stay inside the root, and a symlinked version directory that points at
a sibling version is an alias of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from apps.core.parsing import load_yaml, loads_json
from apps.registries.backends.http_index import SkippedEntry
from apps.registries.sdk import (
    BackendContext,
    InvalidResponse,
    ModelPage,
    NotFound,
    Parameter,
    RegistryBackend,
    RemoteFile,
    RemoteModel,
    RemoteVersion,
    Unavailable,
)

METADATA_FILES = ("model.json", "gpux.yml", "gpux.yaml")
CARD_FILE = "README.md"
CHECKSUMS_FILE = "SHA256SUMS"
CHUNK_SIZE = 1024 * 1024
MAX_METADATA_BYTES = 4 * 1024 * 1024
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _natural(name: str) -> tuple:
    """``2`` before ``10``: version and directory names sort as people read them. Split parts alternate text
    and numbers, so two keys always compare; the name itself breaks ties ("01" and "1")."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)), name


def _visible(name: str) -> bool:
    # Dot files are tooling (.git, .DS_Store, .tmp uploads), never models or model files.
    return not name.startswith(".")


def _id_key(model_id: str) -> tuple:
    """The listing order: directory by directory, naturally sorted, so the cursor compares like the walk."""
    return tuple(_natural(part) for part in model_id.split("/"))


class FileSystemBackend(RegistryBackend):
    """Models in a directory tree on a volume the operator opened to registries (GPUX_REGISTRY_FILE_ROOTS)."""

    name = "filesystem"
    label = "File system"
    description = (
        "Models on a mounted volume laid out as <root>/<model id>/<version>/<files>, with optional model.json, "
        "gpux.yml and README.md for metadata."
    )
    parameters = (
        Parameter("path", type="path", required=True, help="The root directory (under the operator's roots)."),
        Parameter("page_size", type="integer", default=500, min_value=1, max_value=10_000, help="Models per page."),
    )

    def __init__(self, config: dict[str, Any], *, context: BackendContext | None = None) -> None:
        super().__init__(config, context=context)
        # Models left out of the latest listing (an unreadable model.json...): the sync reports them.
        self.skipped: list[SkippedEntry] = []

    # --- the root and paths inside it ---------------------------------------------------------------------
    def _root(self) -> Path:
        # Checked again at every use: the operator may have closed the directory since the registry was saved.
        root = self.context.check_path(self.config["path"])
        if not root.is_dir():
            raise Unavailable(f"{root} is not a directory (is the volume mounted?).")
        return root

    @staticmethod
    def _inside(root: Path, path: Path) -> bool:
        return path == root or root in path.parents

    def _resolve_inside(self, root: Path, relative: str, what: str) -> Path:
        """``root/relative`` resolved, or ``NotFound`` when it uses ``..``, is absolute, or a link leads out."""
        parts = relative.split("/")
        if not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative:
            raise NotFound(f"There is no {what} {relative!r} in this registry.")
        if any(part in ("", ".", "..") or not _visible(part) for part in parts):
            raise NotFound(f"There is no {what} {relative!r} in this registry.")
        try:
            resolved = root.joinpath(*parts).resolve(strict=True)
        except (OSError, RuntimeError):
            raise NotFound(f"There is no {what} {relative!r} in this registry.") from None
        if not self._inside(root, resolved):
            raise NotFound(f"The {what} {relative!r} leads outside the registry's directory.")
        return resolved

    # --- what is a model ----------------------------------------------------------------------------------
    def _subdirectories(self, root: Path, directory: Path) -> list[os.DirEntry]:
        try:
            with os.scandir(directory) as entries:
                found = [e for e in entries if _visible(e.name) and e.is_dir(follow_symlinks=True)]
        except OSError:
            return []
        # A linked directory counts only when it stays inside the root.
        found = [e for e in found if not e.is_symlink() or self._inside(root, Path(e.path).resolve())]
        return sorted(found, key=lambda entry: _natural(entry.name))

    @staticmethod
    def _looks_like_version(directory: Path) -> bool:
        """A directory with a file of its own that is not a model's metadata (a model's own model.json or
        README.md must not make its parent look like a model)."""
        if any((directory / name).is_file() for name in METADATA_FILES):
            return False
        try:
            with os.scandir(directory) as entries:
                return any(
                    _visible(e.name) and e.name not in (*METADATA_FILES, CARD_FILE) and e.is_file() for e in entries
                )
        except OSError:
            return False

    def _is_model_directory(self, root: Path, directory: Path) -> bool:
        if any((directory / name).is_file() for name in METADATA_FILES):
            return True
        return any(
            not entry.is_symlink() and self._looks_like_version(Path(entry.path))
            for entry in self._subdirectories(root, directory)
        )

    def _walk(self, root: Path, directory: Path, prefix: tuple[str, ...], after: tuple | None) -> Iterator[str]:
        """Model ids under ``directory`` in listing order, lazily; subtrees wholly before ``after`` are pruned."""
        for entry in self._subdirectories(root, directory):
            if entry.is_symlink():
                continue  # links between models would list one model twice; only version aliases may be links
            parts = (*prefix, entry.name)
            key = tuple(_natural(part) for part in parts)
            if after is not None and key < after[: len(key)]:
                continue
            path = Path(entry.path)
            if self._is_model_directory(root, path):
                if after is None or key > after:
                    yield "/".join(parts)
            else:
                yield from self._walk(root, path, parts, after)

    # --- reading one model --------------------------------------------------------------------------------
    @staticmethod
    def _read_metadata(directory: Path) -> dict[str, Any]:
        for name in METADATA_FILES:
            path = directory / name
            if not path.is_file():
                continue
            if path.stat().st_size > MAX_METADATA_BYTES:
                raise InvalidResponse(f"{name} is larger than {MAX_METADATA_BYTES} bytes.")
            text = path.read_text(encoding="utf-8", errors="strict")
            try:
                data = loads_json(text) if name.endswith(".json") else load_yaml(text)
            except (ValueError, yaml.YAMLError) as exc:
                raise InvalidResponse(f"{name} cannot be read: {exc}") from None
            if data is None:
                return {}
            if not isinstance(data, dict):
                raise InvalidResponse(f"{name} must hold an object (a mapping of fields).")
            return data
        return {}

    @staticmethod
    def _field(metadata: dict[str, Any], key: str, source: str) -> str:
        value = metadata.get(key)
        if value is None:
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidResponse(f"“{key}” in {source} must be text.")
        return str(value)

    @staticmethod
    def _checksums(version_dir: Path) -> dict[str, str]:
        """``SHA256SUMS`` as written by ``sha256sum``: ``<hex>  <path>`` (or ``<hex> *<path>``) a line."""
        path = version_dir / CHECKSUMS_FILE
        if not path.is_file():
            return {}
        sums = {}
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            digest, _, name = line.strip().partition(" ")
            name = name.strip().lstrip("*").removeprefix("./")
            if SHA256.match(digest.lower()) and name:
                sums[name] = digest.lower()
        return sums

    def _files(self, root: Path, version_dir: Path) -> tuple[list[RemoteFile], list[tuple[str, int, int]]]:
        """The version's files (sorted, recursive) and the (path, size, mtime) list that fingerprints them."""
        sums = self._checksums(version_dir)
        files: list[RemoteFile] = []
        stamps: list[tuple[str, int, int]] = []
        pending = [(version_dir, "")]
        while pending:
            directory, prefix = pending.pop()
            try:
                with os.scandir(directory) as scan:
                    entries = sorted((e for e in scan if _visible(e.name)), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                relative = f"{prefix}{entry.name}"
                if entry.is_symlink():
                    try:
                        target = Path(entry.path).resolve(strict=True)
                    except (OSError, RuntimeError):
                        continue  # a dangling link or a loop
                    if not self._inside(root, target) or not target.is_file():
                        continue  # a link out of the root (or to a directory) is not part of the model
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), f"{relative}/"))
                    continue
                if not entry.is_file() or (not prefix and entry.name == CHECKSUMS_FILE):
                    continue
                stat = entry.stat()
                files.append(RemoteFile(path=relative, size=stat.st_size, sha256=sums.get(relative), locator=relative))
                stamps.append((relative, stat.st_size, stat.st_mtime_ns))
        files.sort(key=lambda remote: remote.path)
        stamps.sort()
        return files, stamps

    def _model(self, root: Path, model_id: str, directory: Path) -> RemoteModel:
        metadata = self._read_metadata(directory)
        source = next((name for name in METADATA_FILES if (directory / name).is_file()), "model.json")
        card_path = directory / CARD_FILE
        card = self._field(metadata, "card", source)
        if not card and card_path.is_file() and card_path.stat().st_size <= MAX_METADATA_BYTES:
            card = card_path.read_text(encoding="utf-8", errors="replace")
        described = metadata.get("versions") or {}
        if not isinstance(described, dict):
            raise InvalidResponse(f"“versions” in {source} must map version labels to their descriptions.")
        tags = metadata.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise InvalidResponse(f"“tags” in {source} must be a list of text values.")

        fingerprint = hashlib.sha256()
        fingerprint.update(json.dumps(metadata, sort_keys=True, default=str).encode())
        fingerprint.update(card.encode())
        versions: list[RemoteVersion] = []
        aliases: dict[str, list[str]] = {}
        directories = self._subdirectories(root, directory)
        for entry in directories:
            if entry.is_symlink():
                target = Path(entry.path).resolve()
                if target.parent == directory.resolve() and not Path(target).is_symlink():
                    aliases.setdefault(target.name, []).append(entry.name)
        for entry in directories:
            if entry.is_symlink():
                continue
            label = entry.name
            files, stamps = self._files(root, Path(entry.path))
            about = described.get(label) or {}
            if not isinstance(about, dict):
                raise InvalidResponse(f"“versions.{label}” in {source} must be an object.")
            extra_aliases = about.get("aliases") or []
            if not isinstance(extra_aliases, list) or not all(isinstance(a, str) for a in extra_aliases):
                raise InvalidResponse(f"“versions.{label}.aliases” in {source} must be a list of text values.")
            created = datetime.fromtimestamp(Path(entry.path).stat().st_mtime, tz=UTC).isoformat()
            versions.append(
                RemoteVersion(
                    label=label,
                    files=tuple(files),
                    aliases=tuple(dict.fromkeys([*aliases.get(label, []), *extra_aliases])),
                    description=self._field(about, "description", source),
                    created_at=self._field(about, "created_at", source) or created,
                )
            )
            fingerprint.update(json.dumps([label, stamps, sorted(aliases.get(label, []))]).encode())
        return RemoteModel(
            id=model_id,
            name=self._field(metadata, "name", source) or directory.name,
            summary=self._field(metadata, "summary", source),
            card=card,
            task=self._field(metadata, "task", source),
            tags=tuple(tags),
            license=self._field(metadata, "license", source),
            url=self._field(metadata, "url", source),
            updated_at=self._field(metadata, "updated_at", source),
            versions=tuple(versions),
            metadata=metadata.get("metadata") if isinstance(metadata.get("metadata"), dict) else {},
            # Sizes and modification times stand in for content: hashing gigabytes at every sync would not do.
            fingerprint=fingerprint.hexdigest()[:32],
        )

    # --- the contract -------------------------------------------------------------------------------------
    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        """Models in directory order, ``page_size`` a page; the cursor is the last model id of the page."""
        self.skipped = []
        root = self._root()
        size = int(self.config.get("page_size") or 500)
        after = _id_key(cursor) if cursor else None
        page: list[RemoteModel] = []
        yielded = False
        for model_id in self._walk(root, root, (), after):
            try:
                model = self._model(root, model_id, root.joinpath(*model_id.split("/")))
            except (InvalidResponse, OSError, UnicodeDecodeError) as exc:
                reason = exc.message if isinstance(exc, InvalidResponse) else f"{type(exc).__name__}: {exc}"
                self.skipped.append(SkippedEntry(model_id, reason, model_id))
                continue
            if len(page) == size:
                # Yielded once the next model is known to exist, so that the last page carries no cursor.
                yield ModelPage(models=tuple(page), cursor=page[-1].id)
                yielded = True
                page = []
            page.append(model)
        if page or not yielded:
            yield ModelPage(models=tuple(page), cursor=None)

    def get_model(self, model_id: str) -> RemoteModel:
        root = self._root()
        directory = self._resolve_inside(root, model_id, "model")
        if directory != root.joinpath(*model_id.split("/")) or not directory.is_dir():
            # A link: the model lives under another id (or elsewhere); it is listed there, not here.
            raise NotFound(f"There is no model {model_id!r} in this registry.")
        if not self._is_model_directory(root, directory):
            raise NotFound(f"There is no model {model_id!r} in this registry.")
        try:
            return self._model(root, model_id, directory)
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidResponse(f"{model_id} cannot be read: {type(exc).__name__}: {exc}") from None

    def open_file(self, model_id: str, version: str, file: RemoteFile) -> Iterator[bytes]:
        root = self._root()
        path = self._resolve_inside(root, f"{model_id}/{version}/{file.locator or file.path}", "file")
        if not path.is_file():
            raise NotFound(f"{model_id}@{version} has no file {file.path}.")
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise NotFound(f"{model_id}@{version}/{file.path} cannot be opened: {exc.strerror}.") from None
        with handle:
            while True:
                try:
                    chunk = handle.read(CHUNK_SIZE)
                except OSError as exc:
                    raise Unavailable(f"Reading {model_id}@{version}/{file.path} failed: {exc.strerror}.") from None
                if not chunk:
                    return
                yield chunk
