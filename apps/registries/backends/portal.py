"""``PortalBackend``: federation with another GPUX Portal through its REST API (``/api/v1/``).

It reads what the other portal's API answers to its token, nothing more: the token's user, scope and binding
there decide which models it sees (a private model of an organization the user is not in is simply not listed).
Only published versions are federated; drafts, deprecated and yanked versions stay home. Files are downloaded
from the version's file route with the same token, and carry the SHA-256 the other portal computed at upload.

Routes used (apps/marketplace/api/urls.py): ``GET models/`` (page-number pagination, ``owner`` filter),
``GET models/{owner}/{name}/`` (card, aliases), ``GET models/{owner}/{name}/versions/?status=published``
(files with size and sha256), ``GET models/{owner}/{name}/versions/{label}/files/{path}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from apps.registries.sdk import (
    BackendContext,
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
)

API_PREFIX = "/api/v1"
# The other portal caps page_size at 500 (apps/core/api/pagination.py).
MAX_PAGE_SIZE = 500
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _segment(value: str) -> str:
    return quote(value, safe="")


def _expect(document: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, kind):
        raise InvalidResponse(f"{where}: the other portal's answer has no valid “{key}”.")
    return value


class PortalBackend(RegistryBackend):
    """Models of another GPUX Portal, as its API shows them to the configured token."""

    name = "gpux-portal"
    label = "GPUX Portal"
    description = (
        "Federation with another GPUX Portal: its published models that the API token may see there, with their "
        "files and checksums."
    )
    parameters = (
        Parameter("url", type="url", required=True, label="Portal URL", help="The other portal's address."),
        Parameter(
            "token",
            sensitive=True,
            label="API token",
            help="A read-scope token of the other portal (gpux_…). Without one, only its public models are seen.",
        ),
        Parameter("organization", help="Only this organization's models there (its slug); empty for all."),
        Parameter("page_size", type="integer", default=100, min_value=1, max_value=MAX_PAGE_SIZE),
    )

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        organization = config.get("organization")
        if organization and not SLUG.match(organization):
            raise ConfigurationError("organization", f"“{organization}” is not an organization slug.")

    # --- HTTP ---------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The portal's root: ``https://portal.example.com`` (a pasted ``.../api/v1`` is accepted too)."""
        url = self.config["url"].rstrip("/")
        return url.removesuffix(API_PREFIX).rstrip("/")

    def api_url(self, path: str) -> str:
        return f"{self.base_url}{API_PREFIX}/{path}"

    def __init__(self, config: dict[str, Any], *, context: BackendContext | None = None) -> None:
        super().__init__(config, context=context)
        self._client: HttpClient | None = None

    @property
    def http(self) -> HttpClient:
        if self._client is None:
            token = self.config.get("token")
            self._client = self.context.http_with({"Authorization": f"Bearer {token}"} if token else {})
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        super().close()

    def _get(self, path: str, **params: Any) -> Any:
        return self.http.get_json(self.api_url(path), params={k: v for k, v in params.items() if v is not None})

    # --- listing ------------------------------------------------------------------------------------------
    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        """The other portal's model list, a page at a time; the cursor is the next page's number."""
        if cursor is not None and not (cursor.startswith("page:") and cursor[5:].isdigit()):
            raise InvalidResponse(f"The cursor {cursor[:80]!r} was not made by the GPUX Portal backend.")
        number = int(cursor[5:]) if cursor else 1
        size = int(self.config.get("page_size") or 100)
        while True:
            try:
                document = self._get("models/", page=number, page_size=size, owner=self.config.get("organization"))
            except NotFound:
                if number == 1:
                    raise
                # DRF answers 404 past the last page: models were removed since the cursor was saved.
                yield ModelPage(models=(), cursor=None)
                return
            results = _expect(document, "results", list, f"models page {number}")
            models = tuple(
                self._full_model(item)
                for item in results
                # Never-published (or wholly yanked) models have no latest version: nothing to federate.
                if isinstance(item, dict) and item.get("latest_version")
            )
            following = document.get("next")
            # Only the presence of ``next`` is used: its host is what the other portal believes it is called,
            # which behind a proxy may not be the address configured here.
            if following:
                number += 1
                yield ModelPage(models=models, cursor=f"page:{number}")
            else:
                yield ModelPage(models=models, cursor=None)
                return

    def _full_model(self, item: dict[str, Any]) -> RemoteModel:
        owner = _expect(item, "owner", str, "a listed model")
        name = _expect(item, "name", str, "a listed model")
        return self._model(owner, name)

    # --- one model ----------------------------------------------------------------------------------------
    def _split(self, model_id: str) -> tuple[str, str]:
        owner, _, name = model_id.partition("/")
        if not owner or not name or "/" in name or not SLUG.match(owner) or not SLUG.match(name):
            raise NotFound(f"“{model_id}” is not a model id of a GPUX Portal (owner/name).")
        return owner, name

    def get_model(self, model_id: str) -> RemoteModel:
        owner, name = self._split(model_id)
        if self.config.get("organization") and owner.lower() != self.config["organization"].lower():
            raise NotFound(f"{model_id} is not in the organization {self.config['organization']}.")
        return self._model(owner, name)

    def _model(self, owner: str, name: str) -> RemoteModel:
        where = f"{owner}/{name}"
        model_path = f"models/{_segment(owner)}/{_segment(name)}/"
        detail = self._get(model_path)
        if not isinstance(detail, dict):
            raise InvalidResponse(f"{where}: the other portal answered something that is not a model.")
        aliases = detail.get("aliases") if isinstance(detail.get("aliases"), dict) else {}
        by_label: dict[str, list[str]] = {}
        for alias, label in aliases.items():
            if isinstance(alias, str) and isinstance(label, str):
                by_label.setdefault(label, []).append(alias)
        versions = tuple(self._versions(owner, name, by_label))
        tags = detail.get("tags") or []
        return RemoteModel(
            id=where,
            name=str(detail.get("name") or name),
            summary=str(detail.get("summary") or ""),
            card=str(detail.get("card") or ""),
            task=str(detail.get("task") or ""),
            tags=tuple(tag for tag in tags if isinstance(tag, str)) if isinstance(tags, list) else (),
            license=str(detail.get("license") or ""),
            url=f"{self.base_url}/models/{_segment(owner)}/{_segment(name)}/",
            updated_at=str(detail.get("updated_at") or ""),
            versions=versions,
            metadata={"uuid": detail.get("uuid"), "visibility": detail.get("visibility")},
        )

    def _versions(self, owner: str, name: str, aliases: dict[str, list[str]]) -> Iterator[RemoteVersion]:
        path = f"models/{_segment(owner)}/{_segment(name)}/versions/"
        number = 1
        while True:
            document = self._get(path, status="published", page=number, page_size=MAX_PAGE_SIZE, ordering="created_at")
            for item in _expect(document, "results", list, f"versions of {owner}/{name}"):
                if not isinstance(item, dict) or item.get("status") != "published":
                    continue  # the filter says so already; an older portal without it must not leak drafts
                label = _expect(item, "label", str, f"a version of {owner}/{name}")
                files = []
                for entry in _expect(item, "files", list, f"{owner}/{name}@{label}"):
                    file_path = _expect(entry, "path", str, f"a file of {owner}/{name}@{label}")
                    if file_path.startswith("/") or any(part in ("", ".", "..") for part in file_path.split("/")):
                        raise InvalidResponse(f"{owner}/{name}@{label} lists a file path {file_path!r} outside it.")
                    size = entry.get("size")
                    sha256 = entry.get("sha256")
                    files.append(
                        RemoteFile(
                            path=file_path,
                            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                            sha256=sha256 if isinstance(sha256, str) and len(sha256) == 64 else None,
                            locator=self._file_route(owner, name, label, file_path),
                        )
                    )
                yield RemoteVersion(
                    label=label,
                    files=tuple(files),
                    aliases=tuple(aliases.get(label, ())),
                    description=str(item.get("changelog") or ""),
                    created_at=str(item.get("published_at") or item.get("created_at") or ""),
                    metadata={
                        key: item[key] for key in ("uuid", "signature", "detected_task") if item.get(key) is not None
                    },
                )
            if not document.get("next"):
                return
            number += 1

    @staticmethod
    def _file_route(owner: str, name: str, label: str, path: str) -> str:
        parts = "/".join(_segment(part) for part in path.split("/"))
        return f"models/{_segment(owner)}/{_segment(name)}/versions/{_segment(label)}/files/{parts}"

    def open_file(self, model_id: str, version: str, file: RemoteFile) -> Iterator[bytes]:
        # The route is rebuilt from the ids rather than taken from the locator: whatever is stored, the request
        # stays on this portal's API and under the model it names.
        owner, name = self._split(model_id)
        yield from self.http.stream(self.api_url(self._file_route(owner, name, version, file.path)))
