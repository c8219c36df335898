"""The data a backend returns: models, their versions and files, and pages of models with a cursor."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RemoteFile:
    """A file of a version, as the registry lists it.

    ``path`` is relative to the version ("model.onnx", "onnx/model_int8.onnx"). ``size`` and ``sha256`` are
    given when the registry knows them; the portal checks downloaded bytes against ``sha256`` when set.
    ``locator`` is whatever the backend needs to fetch the file again (a URL, an artifact path); the portal
    stores it and hands it back to ``open_file``.
    """

    path: str
    size: int | None = None
    sha256: str | None = None
    locator: str = ""


@dataclass(frozen=True)
class RemoteVersion:
    """A version of a model. ``label`` is the registry's own name for it ("3", "v1.2", a commit)."""

    label: str
    files: tuple[RemoteFile, ...] | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""
    created_at: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteModel:
    """A model in a registry. ``id`` is stable in that registry and unique within it ("org/name", "42").

    ``versions`` may be empty when the registry lists models without versions; the portal then keeps the
    model with its card only. ``fingerprint`` tells the portal whether anything changed since the last sync:
    give the registry's own (an etag, a last-modified stamp, a commit) when it has one; otherwise the portal
    hashes the fields.
    """

    id: str
    name: str = ""
    summary: str = ""
    card: str = ""
    task: str = ""
    tags: tuple[str, ...] = ()
    license: str = ""
    url: str = ""
    updated_at: str = ""
    versions: tuple[RemoteVersion, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def content_fingerprint(self) -> str:
        """The registry's fingerprint, or a hash over every field when it gave none."""
        if self.fingerprint:
            return self.fingerprint
        payload = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ModelPage:
    """One page of ``iter_models``. ``cursor`` resumes after this page; ``None`` on the last page.

    ``total`` is how many models the whole listing holds, when the registry says so (for the progress bar).
    """

    models: tuple[RemoteModel, ...]
    cursor: str | None = None
    total: int | None = None
