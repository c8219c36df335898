"""MLflow backend: the registered models of an MLflow tracking server, through its REST API.

It talks to the server with the portal's SSRF-guarded HTTP client, not the ``mlflow`` package (hundreds of
megabytes that would pin the portal's dependencies). The routes, all from MLflow's REST API reference:

- ``GET /api/2.0/mlflow/registered-models/search`` (``filter``, ``max_results``, ``order_by``, ``page_token``)
  lists registered models; ``GET /api/2.0/mlflow/registered-models/get`` reads one;
- ``GET /api/2.0/mlflow/model-versions/search`` (``filter=name='...'``) lists a model's versions;
- ``GET /api/2.0/mlflow/model-versions/get-download-uri`` gives where a version's artifacts are;
- ``GET /api/2.0/mlflow-artifacts/artifacts?path=`` lists and ``GET /api/2.0/mlflow-artifacts/artifacts/<path>``
  downloads them through the tracking server's artifact proxy (``mlflow server`` serves artifacts by default since
  MLflow 2.0; a server started with ``--no-serve-artifacts`` cannot be synced).

A registered model is a model (id = its name); each READY version is a version (label = its number), with the
model's aliases that point at it; its files are the ``MLmodel`` file and the ONNX files among its artifacts.

The cursor is MLflow's own ``next_page_token`` of the registered-model search, ordered by name.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from apps.registries.sdk import (
    ConfigurationError,
    HttpClient,
    InvalidResponse,
    ModelPage,
    NotFound,
    Parameter,
    RegistryBackend,
    RemoteFile,
    RemoteModel,
    RemoteVersion,
    Unauthorized,
)

ARTIFACTS_SCHEME = "mlflow-artifacts"
# The MLmodel file describes the flavors; the rest are the ONNX graph and its external tensor data.
KEPT_SUFFIXES = (".onnx", ".onnx.data", ".onnx_data")
MAX_ARTIFACT_ENTRIES = 1000
MAX_ARTIFACT_DEPTH = 6
SUMMARY_MAX_CHARS = 300


def _iso(milliseconds: Any) -> str:
    if not isinstance(milliseconds, int | float) or isinstance(milliseconds, bool):
        return ""
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _tags(entries: Any) -> dict[str, str]:
    if not isinstance(entries, list):
        return {}
    return {
        entry["key"]: str(entry.get("value", ""))
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("key"), str)
    }


def _quoted_for_filter(value: str) -> str:
    """``value`` as a string literal of MLflow's search filter (it has no escapes: pick the quote it lacks)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise NotFound(f"MLflow's search cannot express the name {value!r} (it holds both kinds of quotes).")


class MlflowBackend(RegistryBackend):
    """Registered models of an MLflow tracking server (open source MLflow or a compatible server)."""

    name = "mlflow"
    label = "MLflow"
    description = (
        "Registered models of an MLflow tracking server: each version's MLmodel file and ONNX files, read through "
        "the server's artifact proxy."
    )
    parameters = (
        Parameter("tracking_uri", type="url", required=True, help="The tracking server, e.g. https://mlflow.example"),
        Parameter("token", sensitive=True, help="A bearer token (MLFLOW_TRACKING_TOKEN), if the server wants one."),
        Parameter("username", help="For HTTP basic auth (MLflow's basic-auth app), with the password."),
        Parameter("password", sensitive=True, help="The basic-auth password."),
        Parameter(
            "name_filter",
            help="Only registered models whose name contains this text, or matches it as an SQL LIKE pattern "
            "when it holds %.",
        ),
    )
    # Registered models per page; each costs one more request for its versions.
    page_size: ClassVar[int] = 100

    # --- configuration ------------------------------------------------------------------------------------
    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        config["tracking_uri"] = config["tracking_uri"].rstrip("/")
        if config.get("token") and (config.get("username") or config.get("password")):
            raise ConfigurationError("token", "Give a token or a username and password, not both.")
        if config.get("username") and not config.get("password"):
            raise ConfigurationError("password", "A username needs its password.")
        if config.get("password") and not config.get("username"):
            raise ConfigurationError("username", "A password needs its username.")
        name_filter = config.get("name_filter") or ""
        if "'" in name_filter and '"' in name_filter:
            raise ConfigurationError("name_filter", "The filter cannot hold both ' and \" (MLflow has no escapes).")

    # --- plumbing -----------------------------------------------------------------------------------------
    @property
    def tracking_uri(self) -> str:
        return self.config["tracking_uri"].rstrip("/")

    @property
    def http(self) -> HttpClient:
        if getattr(self, "_http", None) is None:
            headers: dict[str, str] = {}
            if self.config.get("token"):
                headers["Authorization"] = f"Bearer {self.config['token']}"
            elif self.config.get("username"):
                pair = f"{self.config['username']}:{self.config.get('password') or ''}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            self._http = self.context.http_with(headers)
        return self._http

    def close(self) -> None:
        if getattr(self, "_http", None) is not None:
            self._http.close()
        super().close()

    def _get(self, route: str, **params: Any) -> dict[str, Any]:
        url = f"{self.tracking_uri}{route}"
        try:
            answer = self.http.get_json(url, params=params)
        except Unauthorized as exc:
            how = (
                "token"
                if self.config.get("token")
                else "username and password"
                if self.config.get("username")
                else None
            )
            advice = f"check the registry's {how}" if how else "the server wants credentials: set a token or a username"
            raise Unauthorized(f"MLflow at {urlsplit(url).netloc} refused the request ({exc}); {advice}.") from exc
        if not isinstance(answer, dict):
            raise InvalidResponse(f"MLflow answered {route} with something other than a JSON object.")
        return answer

    # --- listing ------------------------------------------------------------------------------------------
    def _search_filter(self) -> str | None:
        text = self.config.get("name_filter") or ""
        if not text:
            return None
        pattern = text if "%" in text else f"%{text}%"
        return f"name LIKE {_quoted_for_filter(pattern)}"

    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        token = cursor
        while True:
            params: dict[str, Any] = {"max_results": self.page_size, "order_by": "name ASC"}
            if self._search_filter():
                params["filter"] = self._search_filter()
            if token:
                params["page_token"] = token
            answer = self._get("/api/2.0/mlflow/registered-models/search", **params)
            entries = answer.get("registered_models") or []
            if not isinstance(entries, list):
                raise InvalidResponse("MLflow's registered-model search did not answer a list.")
            models = tuple(self._model(entry) for entry in entries)
            token = answer.get("next_page_token") or None
            # MLflow can hand out a token for an empty last page; that page is still the end of the listing.
            yield ModelPage(models=models, cursor=token if token and models else None)
            if not token or not models:
                return

    def get_model(self, model_id: str) -> RemoteModel:
        answer = self._get("/api/2.0/mlflow/registered-models/get", name=model_id)
        entry = answer.get("registered_model")
        if not isinstance(entry, dict):
            raise InvalidResponse(f"MLflow described {model_id} without a registered_model.")
        return self._model(entry)

    def _model(self, entry: dict[str, Any]) -> RemoteModel:
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidResponse("A registered model in MLflow's answer has no name.")
        aliases: dict[str, list[str]] = {}
        for alias in entry.get("aliases") or []:
            if isinstance(alias, dict) and isinstance(alias.get("alias"), str):
                aliases.setdefault(str(alias.get("version")), []).append(alias["alias"])
        tags = _tags(entry.get("tags"))
        public_tags = {key: value for key, value in tags.items() if not key.startswith("mlflow.")}
        description = entry.get("description") or ""
        versions = tuple(
            self._version(version, aliases.get(str(version.get("version")), []))
            for version in self._versions(name)
            if version.get("status", "READY") == "READY"
        )
        latest = sorted(
            (str(v.get("version")), str(v.get("last_updated_timestamp")))
            for v in entry.get("latest_versions") or []
            if isinstance(v, dict)
        )
        # last_updated_timestamp moves with new versions and edits; aliases and latest versions cover the rest.
        stamp = json.dumps([entry.get("last_updated_timestamp"), latest, sorted(aliases.items())], sort_keys=True)
        return RemoteModel(
            id=name,
            name=name,
            summary=description.strip().split("\n", 1)[0][:SUMMARY_MAX_CHARS] if description else "",
            card=description,
            task=public_tags.get("task", ""),
            tags=tuple(f"{key}:{value}" if value else key for key, value in sorted(public_tags.items())),
            license=public_tags.get("license", ""),
            url=f"{self.tracking_uri}/#/models/{quote(name, safe='')}",
            updated_at=_iso(entry.get("last_updated_timestamp")),
            versions=versions,
            metadata={"tags": tags, "created_at": _iso(entry.get("creation_timestamp"))},
            fingerprint=hashlib.sha256(stamp.encode()).hexdigest()[:32],
        )

    def _versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``, oldest first."""
        found: list[dict[str, Any]] = []
        token = None
        while True:
            params: dict[str, Any] = {"filter": f"name={_quoted_for_filter(name)}", "max_results": 1000}
            if token:
                params["page_token"] = token
            answer = self._get("/api/2.0/mlflow/model-versions/search", **params)
            page = answer.get("model_versions") or []
            if not isinstance(page, list):
                raise InvalidResponse(f"MLflow's version search for {name} did not answer a list.")
            found.extend(version for version in page if isinstance(version, dict) and version.get("version"))
            token = answer.get("next_page_token")
            if not token or not page:
                break

        def number(version: dict[str, Any]) -> tuple[int, str]:
            label = str(version["version"])
            return (int(label), label) if label.isdigit() else (0, label)

        return sorted(found, key=number)

    def _version(self, entry: dict[str, Any], aliases: list[str]) -> RemoteVersion:
        metadata = {
            "tags": _tags(entry.get("tags")),
            "run_id": entry.get("run_id") or "",
            "source": entry.get("source") or "",
            "stage": entry.get("current_stage") or "",
        }
        return RemoteVersion(
            label=str(entry["version"]),
            files=None,  # listed by list_files: one artifact walk per version, only for versions the sync needs
            aliases=tuple(sorted(set(aliases) | {a for a in entry.get("aliases") or [] if isinstance(a, str)})),
            description=entry.get("description") or "",
            created_at=_iso(entry.get("creation_timestamp")),
            metadata=metadata,
        )

    # --- files --------------------------------------------------------------------------------------------
    def _artifact_root(self, model_id: str, version: str) -> str:
        """The version's artifact directory as a path under the tracking server's artifact proxy."""
        answer = self._get("/api/2.0/mlflow/model-versions/get-download-uri", name=model_id, version=version)
        uri = answer.get("artifact_uri")
        if not isinstance(uri, str) or not uri:
            raise InvalidResponse(f"MLflow gave no artifact location for {model_id} version {version}.")
        parts = urlsplit(uri)
        if parts.scheme != ARTIFACTS_SCHEME:
            raise InvalidResponse(
                f"The artifacts of {model_id} version {version} are at {parts.scheme}://, which the portal cannot "
                "read through the tracking server: run it with artifact serving (mlflow server --serve-artifacts)."
            )
        return parts.path.strip("/")

    def list_files(self, model_id: str, version: str) -> list[RemoteFile]:
        root = self._artifact_root(model_id, version)
        files: list[RemoteFile] = []
        pending = [("", 0)]
        seen = 0
        while pending:
            directory, depth = pending.pop()
            answer = self._get("/api/2.0/mlflow-artifacts/artifacts", path=posixpath.join(root, directory).rstrip("/"))
            for item in answer.get("files") or []:
                seen += 1
                if seen > MAX_ARTIFACT_ENTRIES:
                    raise InvalidResponse(f"{model_id} version {version} has over {MAX_ARTIFACT_ENTRIES} artifacts.")
                if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                    raise InvalidResponse(f"An artifact of {model_id} version {version} has no path.")
                # The proxy answers paths relative to the directory asked for.
                path = posixpath.join(directory, posixpath.basename(item["path"].rstrip("/")))
                if item.get("is_dir"):
                    if depth + 1 < MAX_ARTIFACT_DEPTH:
                        pending.append((path, depth + 1))
                    continue
                if path == "MLmodel" or path.endswith(KEPT_SUFFIXES):
                    size = item.get("file_size")
                    files.append(
                        RemoteFile(
                            path=path,
                            size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
                            locator=posixpath.join(root, path),
                        )
                    )
        return sorted(files, key=lambda remote: remote.path)

    def open_file(self, model_id: str, version: str, file: RemoteFile) -> Iterator[bytes]:
        parts = file.path.split("/")
        if file.path.startswith("/") or ".." in parts or "" in parts:
            raise NotFound(f"{file.path} is not a path inside the artifacts of {model_id} version {version}.")
        # The path is rebuilt from the version's own artifact root, never taken from a stored locator, so a file
        # can only come from the version it is said to belong to.
        root = self._artifact_root(model_id, version)
        url = f"{self.tracking_uri}/api/2.0/mlflow-artifacts/artifacts/{quote(posixpath.join(root, file.path))}"
        yield from self.http.stream(url)
