"""Weights & Biases backend: artifacts of type ``model`` (configurable), through W&B's public GraphQL API.

It posts to ``{base_url}/graphql`` with the portal's SSRF-guarded HTTP client and HTTP basic auth (user ``api``,
password the API key), as the ``wandb`` SDK does. The queries are the SDK's own public-API queries, cut down to
the fields the portal reads:

- ``Projects``: ``models(entityName:)``, the entity's projects (W&B's GraphQL still calls projects "models"),
  used only when no project is configured;
- ``ProjectArtifactCollections``: ``project { artifactType(name:) { artifactCollections(after:) } }``, the
  collections (one per logged model name) of a project, a page at a time;
- ``ArtifactCollection``: one collection by name;
- ``ArtifactVersions``: ``artifactCollection { artifacts(filters: {"state": "COMMITTED"}, after:, first:) }``,
  the collection's committed versions with their aliases and digests;
- ``ArtifactFiles``: ``artifact(name: "collection:vN") { files(names:, after:, first:) }``, a version's files
  with their size, md5 and direct download URL.

A collection is a model with id ``entity/project/collection``; each committed version is a version labelled
``vN`` (W&B's own label) with its aliases (``latest``, ``production``...). Files are downloaded from their
``directUrl``: a signed storage URL on another host gets no API key; one on the W&B host itself gets it. W&B lists
md5 digests, not sha256: ``open_file`` checks the md5 while streaming and raises ``ChecksumMismatch``.

The cursor is JSON: ``{"project": name, "after": W&B's endCursor or null}``; projects are visited in name order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

from apps.core.parsing import loads_json
from apps.registries.sdk import (
    ChecksumMismatch,
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

DEFAULT_BASE_URL = "https://api.wandb.ai"
NAME = re.compile(r"^[\w.-]+$")
VERSION_LABEL = re.compile(r"^v\d+$")
SUMMARY_MAX_CHARS = 300

PROJECTS = """
query Projects($entity: String, $cursor: String, $perPage: Int = 50) {
  models(entityName: $entity, after: $cursor, first: $perPage) {
    edges { node { name } cursor }
    pageInfo { endCursor hasNextPage }
  }
}"""

COLLECTIONS = """
query ProjectArtifactCollections($entityName: String!, $projectName: String!, $artifactTypeName: String!,
                                 $cursor: String) {
  project(name: $projectName, entityName: $entityName) {
    artifactType(name: $artifactTypeName) {
      artifactCollections(after: $cursor) {
        pageInfo { endCursor hasNextPage }
        edges { node { id name description createdAt tags { edges { node { name } } } } cursor }
      }
    }
  }
}"""

COLLECTION = """
query ArtifactCollection($entityName: String!, $projectName: String!, $artifactTypeName: String!,
                         $artifactCollectionName: String!) {
  project(name: $projectName, entityName: $entityName) {
    artifactType(name: $artifactTypeName) {
      artifactCollection(name: $artifactCollectionName) {
        id name description createdAt tags { edges { node { name } } }
      }
    }
  }
}"""

VERSIONS = """
query ArtifactVersions($entityName: String!, $projectName: String!, $artifactTypeName: String!,
                       $artifactCollectionName: String!, $cursor: String, $perPage: Int = 100, $filters: JSONString) {
  project(name: $projectName, entityName: $entityName) {
    artifactType(name: $artifactTypeName) {
      artifactCollection(name: $artifactCollectionName) {
        artifacts(filters: $filters, after: $cursor, first: $perPage) {
          edges {
            node { id versionIndex digest state description createdAt updatedAt metadata fileCount aliases { alias } }
            version
            cursor
          }
          pageInfo { endCursor hasNextPage }
        }
      }
    }
  }
}"""

FILES = """
query ArtifactFiles($entityName: String!, $projectName: String!, $artifactTypeName: String!, $artifactName: String!,
                    $fileNames: [String!], $fileCursor: String, $fileLimit: Int = 100) {
  project(name: $projectName, entityName: $entityName) {
    artifactType(name: $artifactTypeName) {
      artifact(name: $artifactName) {
        files(names: $fileNames, after: $fileCursor, first: $fileLimit) {
          edges { node { id name: displayName sizeBytes digest md5 directUrl } cursor }
          pageInfo { endCursor hasNextPage }
        }
      }
    }
  }
}"""


def _dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or ``None`` as soon as a level is missing or null (GraphQL nulls what it cannot find)."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _connection(data: Any, what: str) -> tuple[list[dict[str, Any]], str | None]:
    """The nodes' edges of a GraphQL connection and the cursor after them (``None`` when there is no next page)."""
    if not isinstance(data, dict) or not isinstance(data.get("edges"), list):
        raise InvalidResponse(f"W&B answered {what} without a list of edges.")
    edges = [edge for edge in data["edges"] if isinstance(edge, dict) and isinstance(edge.get("node"), dict)]
    info = data.get("pageInfo") if isinstance(data.get("pageInfo"), dict) else {}
    following = info.get("endCursor") if info.get("hasNextPage") else None
    return edges, following if isinstance(following, str) and following else None


def _tag_names(collection: dict[str, Any]) -> tuple[str, ...]:
    edges = _dig(collection, "tags", "edges") or []
    return tuple(name for edge in edges if isinstance(name := _dig(edge, "node", "name"), str))


class WandbBackend(RegistryBackend):
    """Model artifacts of a Weights & Biases entity (all its projects, or one), through the public GraphQL API."""

    name = "wandb"
    label = "Weights & Biases"
    description = "Artifacts of type model logged to Weights & Biases: each collection a model, each version a version."
    parameters = (
        Parameter("base_url", type="url", default=DEFAULT_BASE_URL, help="W&B's API, or a W&B Server's URL."),
        Parameter("api_key", required=True, sensitive=True, help="An API key of a user who can read the projects."),
        Parameter("entity", required=True, help="The team or user whose artifacts to sync."),
        Parameter("project", help="Only this project (otherwise every project of the entity)."),
        Parameter("artifact_type", default="model", help="The artifact type that holds models."),
    )
    # Versions and files asked for per request (W&B pages its connections).
    page_size: ClassVar[int] = 100

    # --- configuration ------------------------------------------------------------------------------------
    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        config["base_url"] = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        for field in ("entity", "project", "artifact_type"):
            value = config.get(field)
            if value and not NAME.match(value):
                raise ConfigurationError(field, f"“{value}” is not a W&B name (letters, digits, - _ and . only).")
        config["artifact_type"] = config.get("artifact_type") or "model"

    # --- plumbing -----------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return (self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    @property
    def entity(self) -> str:
        return self.config["entity"]

    @property
    def http(self) -> HttpClient:
        if getattr(self, "_http", None) is None:
            pair = f"api:{self.config['api_key']}".encode()
            self._http = self.context.http_with({"Authorization": "Basic " + base64.b64encode(pair).decode()})
        return self._http

    def close(self) -> None:
        if getattr(self, "_http", None) is not None:
            self._http.close()
        super().close()

    def _query(self, operation: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """``data`` of a GraphQL answer. HTTP errors come back as the SDK's; GraphQL errors are read here."""
        url = f"{self.base_url}/graphql"
        payload = {"operationName": operation, "query": query, "variables": variables}
        try:
            answer = self.http.post_json(url, payload)
        except Unauthorized as exc:
            raise Unauthorized(f"W&B refused the API key ({exc}); check the registry's api_key.") from exc
        if not isinstance(answer, dict):
            raise InvalidResponse(f"W&B answered {operation} with something other than a JSON object.")
        errors = answer.get("errors") or []
        data = answer.get("data")
        if errors:
            messages = "; ".join(str(error.get("message", error)) for error in errors if isinstance(error, dict))
            lowered = messages.lower()
            if "permission" in lowered or "not authorized" in lowered or "unauthorized" in lowered:
                raise Unauthorized(f"W&B refused {operation}: {messages}")
            if "not found" in lowered:
                raise NotFound(f"W&B: {messages}")
            if not isinstance(data, dict):
                raise InvalidResponse(f"W&B answered {operation} with errors: {messages}")
        if not isinstance(data, dict):
            raise InvalidResponse(f"W&B answered {operation} without data.")
        return data

    def _scope(self, project: str) -> dict[str, Any]:
        return {"entityName": self.entity, "projectName": project, "artifactTypeName": self.config["artifact_type"]}

    # --- listing ------------------------------------------------------------------------------------------
    def _projects(self) -> list[str]:
        if self.config.get("project"):
            return [self.config["project"]]
        names: list[str] = []
        cursor = None
        while True:
            data = self._query("Projects", PROJECTS, {"entity": self.entity, "cursor": cursor, "perPage": 100})
            if data.get("models") is None:
                raise ConfigurationError("entity", f"W&B has no entity “{self.entity}” that the API key can read.")
            edges, cursor = _connection(data["models"], "the projects")
            names.extend(name for edge in edges if isinstance(name := edge["node"].get("name"), str))
            if cursor is None:
                return sorted(set(names))

    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        start_project, after = self._parse_cursor(cursor)
        projects = [name for name in self._projects() if start_project is None or name >= start_project]
        for index, project in enumerate(projects):
            following = projects[index + 1] if index + 1 < len(projects) else None
            resume = after if project == start_project else None
            while True:
                data = self._query(
                    "ProjectArtifactCollections", COLLECTIONS, {**self._scope(project), "cursor": resume}
                )
                if data.get("project") is None:
                    if self.config.get("project"):
                        raise ConfigurationError(
                            "project", f"W&B has no project {self.entity}/{project} that the API key can read."
                        )
                    edges, resume = [], None  # gone since the project listing: nothing to sync there
                else:
                    collections = _dig(data, "project", "artifactType", "artifactCollections")
                    # A project that never logged an artifact of this type has no such artifactType.
                    edges, resume = _connection(collections, "the collections") if collections else ([], None)
                models = tuple(self._model(project, edge["node"]) for edge in edges)
                if resume is not None:
                    next_cursor: str | None = json.dumps({"project": project, "after": resume})
                elif following is not None:
                    next_cursor = json.dumps({"project": following, "after": None})
                else:
                    next_cursor = None
                # Every project yields at least one page, so the listing's last page always has cursor None.
                yield ModelPage(models=models, cursor=next_cursor)
                if resume is None:
                    break

    @staticmethod
    def _parse_cursor(cursor: str | None) -> tuple[str | None, str | None]:
        if not cursor:
            return None, None
        try:
            state = json.loads(cursor)
            project, after = state["project"], state.get("after")
        except (ValueError, TypeError, KeyError):
            raise InvalidResponse(f"“{cursor}” is not a cursor of the W&B backend.") from None
        if not isinstance(project, str) or not (after is None or isinstance(after, str)):
            raise InvalidResponse(f"“{cursor}” is not a cursor of the W&B backend.")
        return project, after

    # --- one model ----------------------------------------------------------------------------------------
    def _split_id(self, model_id: str) -> tuple[str, str]:
        parts = model_id.split("/")
        if len(parts) != 3 or not all(NAME.match(part) for part in parts):
            raise NotFound(f"“{model_id}” is not a W&B model id (entity/project/collection).")
        entity, project, collection = parts
        if entity != self.entity or (self.config.get("project") and project != self.config["project"]):
            raise NotFound(f"{model_id} is outside this registry's entity and project.")
        return project, collection

    def get_model(self, model_id: str) -> RemoteModel:
        project, collection = self._split_id(model_id)
        data = self._query(
            "ArtifactCollection", COLLECTION, {**self._scope(project), "artifactCollectionName": collection}
        )
        node = _dig(data, "project", "artifactType", "artifactCollection")
        if not isinstance(node, dict):
            raise NotFound(f"W&B has no {self.config['artifact_type']} artifact collection {model_id}.")
        return self._model(project, node)

    def _model(self, project: str, node: dict[str, Any]) -> RemoteModel:
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidResponse("A W&B artifact collection has no name.")
        versions = self._versions(project, name)
        description = node.get("description") or ""
        # Each version's digest changes with its content, and aliases move between versions.
        stamp = json.dumps([node.get("id"), [(v.label, v.metadata.get("digest"), v.aliases) for v in versions]])
        return RemoteModel(
            id=f"{self.entity}/{project}/{name}",
            name=name,
            summary=description.strip().split("\n", 1)[0][:SUMMARY_MAX_CHARS],
            card=description,
            tags=_tag_names(node),
            url=f"https://wandb.ai/{self.entity}/{project}/artifacts/{self.config['artifact_type']}/{name}",
            updated_at=max((v.metadata.get("updated_at") or "" for v in versions), default=""),
            versions=versions,
            metadata={"project": project, "collection_id": node.get("id") or "", "created_at": node.get("createdAt")},
            fingerprint=hashlib.sha256(stamp.encode()).hexdigest()[:32],
        )

    def _versions(self, project: str, collection: str) -> tuple[RemoteVersion, ...]:
        versions: list[RemoteVersion] = []
        cursor = None
        while True:
            variables = {
                **self._scope(project),
                "artifactCollectionName": collection,
                "cursor": cursor,
                "perPage": self.page_size,
                "filters": json.dumps({"state": "COMMITTED"}),
            }
            data = self._query("ArtifactVersions", VERSIONS, variables)
            artifacts = _dig(data, "project", "artifactType", "artifactCollection", "artifacts")
            if artifacts is None:
                break
            edges, cursor = _connection(artifacts, f"the versions of {collection}")
            versions.extend(self._version(edge) for edge in edges)
            if cursor is None:
                break

        def number(version: RemoteVersion) -> int:
            return int(version.label[1:]) if VERSION_LABEL.match(version.label) else -1

        return tuple(sorted(versions, key=number))

    @staticmethod
    def _version(edge: dict[str, Any]) -> RemoteVersion:
        node = edge["node"]
        label = edge.get("version") or (f"v{node['versionIndex']}" if isinstance(node.get("versionIndex"), int) else "")
        if not isinstance(label, str) or not label:
            raise InvalidResponse("A W&B artifact version has no version label.")
        aliases = [alias for item in node.get("aliases") or [] if isinstance(alias := _dig(item, "alias"), str)]
        metadata = node.get("metadata")
        if isinstance(metadata, str):  # a JSONString in W&B's schema
            try:
                metadata = loads_json(metadata) if metadata else {}
            except ValueError:
                metadata = {}
        return RemoteVersion(
            label=label,
            files=None,  # listed by list_files, for the versions the sync needs
            aliases=tuple(alias for alias in aliases if alias != label and not VERSION_LABEL.match(alias)),
            description=node.get("description") or "",
            created_at=node.get("createdAt") or "",
            metadata={
                "artifact_id": node.get("id") or "",
                "digest": node.get("digest") or "",
                "updated_at": node.get("updatedAt") or "",
                "file_count": node.get("fileCount"),
                "wandb_metadata": metadata if isinstance(metadata, dict) else {},
            },
        )

    # --- files --------------------------------------------------------------------------------------------
    def _files(self, model_id: str, version: str, names: list[str] | None = None) -> list[dict[str, Any]]:
        project, collection = self._split_id(model_id)
        if not VERSION_LABEL.match(version):
            raise NotFound(f"“{version}” is not a W&B version label (vN).")
        nodes: list[dict[str, Any]] = []
        cursor = None
        while True:
            variables = {
                **self._scope(project),
                "artifactName": f"{collection}:{version}",
                "fileNames": names,
                "fileCursor": cursor,
                "fileLimit": self.page_size,
            }
            data = self._query("ArtifactFiles", FILES, variables)
            files = _dig(data, "project", "artifactType", "artifact", "files")
            if files is None:
                raise NotFound(f"W&B has no version {version} of {model_id}.")
            edges, cursor = _connection(files, f"the files of {model_id}:{version}")
            nodes.extend(edge["node"] for edge in edges if isinstance(edge["node"].get("name"), str))
            if cursor is None:
                return nodes

    def list_files(self, model_id: str, version: str) -> list[RemoteFile]:
        return sorted(
            (
                RemoteFile(
                    path=node["name"],
                    size=node["sizeBytes"] if isinstance(node.get("sizeBytes"), int) else None,
                    locator=str(node.get("id") or ""),
                )
                for node in self._files(model_id, version)
            ),
            key=lambda remote: remote.path,
        )

    def open_file(self, model_id: str, version: str, file: RemoteFile) -> Iterator[bytes]:
        # Direct URLs are signed and expire: ask for a fresh one rather than storing it as the locator.
        found = [node for node in self._files(model_id, version, [file.path]) if node["name"] == file.path]
        if not found:
            raise NotFound(f"{model_id}:{version} has no file {file.path}.")
        node = found[0]
        url = node.get("directUrl")
        if not isinstance(url, str) or not url:
            raise InvalidResponse(f"W&B gave no download URL for {model_id}:{version}/{file.path}.")
        # The API key goes only to W&B itself, never to the storage host of a signed URL.
        same_origin = urlsplit(url)[:2] == urlsplit(self.base_url)[:2]
        client = self.http if same_origin else self.context.http
        expected = node.get("md5") or node.get("digest")
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in client.stream(url):
            digest.update(chunk)
            yield chunk
        if isinstance(expected, str) and expected and base64.b64encode(digest.digest()).decode() != expected:
            raise ChecksumMismatch(f"{model_id}:{version}/{file.path} does not match the md5 W&B lists for it.")
