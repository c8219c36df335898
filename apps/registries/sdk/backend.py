"""``RegistryBackend``: what a registry plugin implements.

A backend is constructed with its cleaned configuration (sensitive parameters included, decrypted) and a
``BackendContext`` that gives it the portal's HTTP client (SSRF-guarded) and the directories it may read.
It lists models page by page with a resumable cursor, describes one model, lists a version's files and
streams a file. It raises the SDK's exceptions (``apps.registries.sdk.errors``) and nothing else.

    class MyRegistry(RegistryBackend):
        name = "my-registry"
        label = "My registry"
        parameters = (
            Parameter("url", type="url", required=True),
            Parameter("token", sensitive=True),
        )

        def iter_models(self, cursor=None):
            ...  # yield ModelPage(models=(...), cursor="after-page-1")

Register it in the package's ``pyproject.toml``::

    [project.entry-points."gpux_portal.registries"]
    my-registry = "my_package.backend:MyRegistry"
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from apps.registries.sdk.errors import ConfigurationError, NotFound, UnsafeURL
from apps.registries.sdk.http import HttpClient, NetworkPolicy
from apps.registries.sdk.parameters import Parameter, clean_parameters
from apps.registries.sdk.types import ModelPage, RemoteFile, RemoteModel, RemoteVersion

SDK_VERSION = "1.0"


@dataclass
class BackendContext:
    """What the portal lends a backend: the network policy, an HTTP client under it, readable roots."""

    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    file_roots: tuple[Path, ...] = ()
    timeout: float = 30.0
    _http: HttpClient | None = None

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient(policy=self.policy, timeout=self.timeout)
        return self._http

    def http_with(self, headers: dict[str, str]) -> HttpClient:
        """A client that sends ``headers`` (an Authorization header, say) on every request."""
        return HttpClient(policy=self.policy, timeout=self.timeout, headers=headers)

    def check_path(self, value: str, *, field: str = "path") -> Path:
        """``value`` resolved, or ``ConfigurationError`` unless it lies under one of ``file_roots``."""
        path = Path(value).expanduser()
        if not path.is_absolute():
            raise ConfigurationError(field, "The path must be absolute.")
        resolved = path.resolve()
        for root in self.file_roots:
            root = Path(root).resolve()
            if resolved == root or root in resolved.parents:
                return resolved
        roots = ", ".join(str(root) for root in self.file_roots) or "none are configured"
        raise ConfigurationError(
            field,
            f"{value} is not under a directory the operator opened to registries (GPUX_REGISTRY_FILE_ROOTS: {roots}).",
        )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


class RegistryBackend:
    """Base class of every registry backend. Subclasses set ``name``, ``label``, ``parameters`` and implement
    ``iter_models``, ``get_model`` and ``open_file`` (``list_files`` has a default).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    # Defaults a preset fills in (the ONNX Model Zoo is the Hugging Face backend with an author set).
    presets: ClassVar[dict[str, Any]] = {}
    # Django templates call callables they are given; the portal's pages show backend classes, never call them.
    do_not_call_in_templates: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any], *, context: BackendContext | None = None) -> None:
        self.config = config
        self.context = context or BackendContext()

    # --- configuration ------------------------------------------------------------------------------------
    @classmethod
    def sensitive_parameters(cls) -> tuple[str, ...]:
        return tuple(parameter.name for parameter in cls.parameters if parameter.sensitive)

    @classmethod
    def clean_config(cls, values: dict[str, Any], *, context: BackendContext) -> dict[str, Any]:
        """``values`` validated against ``parameters``: URLs checked against the network policy, paths against
        the file roots, then ``validate`` for rules across parameters. Raises ``ConfigurationError``.
        """
        cleaned = clean_parameters(cls.parameters, {**cls.presets, **values})
        for parameter in cls.parameters:
            value = cleaned.get(parameter.name)
            if not value:
                continue
            if parameter.type == "url":
                try:
                    context.policy.check_url(value, field=parameter.name)
                except UnsafeURL:
                    raise
            elif parameter.type == "path":
                cleaned[parameter.name] = str(context.check_path(value, field=parameter.name))
        cls.validate(cleaned)
        return cleaned

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        """Rules that involve several parameters; raise ``ConfigurationError(field, message)``."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "label": cls.label or cls.name,
            "description": cls.description,
            "parameters": [parameter.describe() for parameter in cls.parameters if parameter.name not in cls.presets],
        }

    # --- the contract -------------------------------------------------------------------------------------
    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        """Pages of models in a stable order. Each page's ``cursor`` resumes right after it; the last is ``None``."""
        raise NotImplementedError

    def get_model(self, model_id: str) -> RemoteModel:
        """One model by its id; ``NotFound`` if there is none."""
        raise NotImplementedError

    def list_files(self, model_id: str, version: str) -> list[RemoteFile]:
        """A version's files. The default reads them from ``get_model``; override when listing is separate."""
        for remote_version in self.get_model(model_id).versions:
            if remote_version.label == version:
                return list(remote_version.files or ())
        raise NotFound(f"{model_id} has no version {version}.")

    def open_file(self, model_id: str, version: str, file: RemoteFile) -> Iterator[bytes]:
        """The file's bytes as chunks (streamed, not read into memory). ``NotFound`` if it is gone."""
        raise NotImplementedError

    def listing_snapshot(self) -> str | None:
        """A validator of the whole listing as it is now (an ETag, a last-modified stamp, a revision), or None.

        Asked before a sync starts reading. When it equals the snapshot of the last complete sync that had no
        failures, the sync marks every model as seen without reading the listing again. Give one only when it
        changes whenever anything in the listing does. The default, None, always reads the listing.
        """
        return None

    def check(self) -> None:
        """Raise the SDK error a sync would meet (``Unauthorized``, ``Unavailable``...) or return. The default
        reads the first page of models."""
        next(iter(self.iter_models(None)), None)

    def close(self) -> None:
        """Release connections. Called when a sync ends."""
        self.context.close()


def find_version(model: RemoteModel, label: str) -> RemoteVersion:
    for version in model.versions:
        if version.label == label:
            return version
    raise NotFound(f"{model.id} has no version {label}.")
