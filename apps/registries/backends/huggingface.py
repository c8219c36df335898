"""Hugging Face Hub backends: the Hub itself, an enterprise mirror or proxy of it, and the ONNX Model Zoo preset.

Every request goes through the portal's SSRF-guarded HTTP client (``self.context``), not through
``huggingface_hub``'s own session: that session is process-wide, follows redirects without checking where they
lead and has no timeout, which a sync worker talking to a user-entered endpoint cannot accept. The backend uses
the Hub's documented HTTP API, the same routes ``HfApi`` calls, and ``huggingface_hub.hf_hub_url`` to build
download URLs exactly as the library does:

- ``GET /api/models?author=&filter=&search=&limit=&expand=siblings`` lists repositories, paginated by the Hub's
  ``Link: <...cursor=...>; rel="next"`` header;
- ``GET /api/models/<id>/revision/<revision>`` describes a repository at a revision (commit sha, card data);
- ``GET /api/models/<id>/tree/<commit>?recursive=true`` lists its files with sizes and, for LFS files, sha256;
- ``GET /<id>/resolve/<commit>/<path>`` streams a file (the Hub redirects LFS files to its CDN; every hop is
  checked against the network policy).

A model is a repository that holds at least one ``.onnx`` file; it has one version, labelled by the first 12
hex digits of the commit its pinned ``revision`` points at, with the revision name as alias, so that a new
upstream commit becomes a new version. Files are the repository's files matching ``file_patterns``.

Cursors. With ``repositories`` set, the cursor is the index (decimal) of the next repository in the sorted,
de-duplicated list. Otherwise it is the Hub's own opaque pagination cursor taken from the ``Link`` header of
the page just read, prefixed with ``hub:``; resuming sends the same query with that cursor, which is how the Hub
itself continues a listing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from huggingface_hub import hf_hub_url

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

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_FILE_PATTERNS = ("*.onnx", "*.onnx.data", "*.json", "*.txt", "*.md", "*.yml", "*.yaml", "*.model")
CARD_MAX_BYTES = 256 * 1024
SUMMARY_MAX_CHARS = 300
SHORT_COMMIT = 12
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
BARE_NAME = re.compile(r"^[\w.-]+$")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
FRONT_MATTER = re.compile(r"\A\s*---\s*\n.*?\n---\s*(\n|\Z)", re.S)
HUB_CURSOR = "hub:"


class _HubHttpClient(HttpClient):
    """The SDK client, reading the Hub's ``X-Error-Code`` before the status code.

    The Hub answers 401, not 404, for a repository that does not exist (so as not to reveal private ones), and
    tells the cases apart only in ``X-Error-Code``/``X-Error-Message``; the status alone would turn every
    missing repository into "wrong credentials".
    """

    @staticmethod
    def _raise_for_status(response: httpx.Response, url: str) -> None:
        if response.status_code >= 400:
            code = response.headers.get("x-error-code", "")
            detail = response.headers.get("x-error-message", "")
            path = urlsplit(url).path
            if code in ("RepoNotFound", "RevisionNotFound", "EntryNotFound"):
                response.close()
                raise NotFound(
                    f"The Hub has nothing at {path} ({code}): no such repository, revision or file, or a private "
                    "repository the token cannot read."
                )
            if code == "GatedRepo":
                response.close()
                raise Unauthorized(
                    f"{path} is a gated repository: accept its terms on the Hub with the account whose token "
                    "the registry uses."
                )
            if response.status_code in (401, 403):
                response.close()
                reason = f": {detail}" if detail else ""
                raise Unauthorized(
                    f"{urlsplit(url).netloc} refused the token (HTTP {response.status_code}{reason}). Check the "
                    "registry's token and its read permission."
                )
        HttpClient._raise_for_status(response, url)


def _next_cursor(response: httpx.Response) -> str | None:
    """The Hub's opaque cursor from a ``Link: <...?cursor=...>; rel="next"`` header."""
    link = response.links.get("next", {}).get("url")
    if not link:
        return None
    values = parse_qs(urlsplit(link).query).get("cursor")
    if not values:
        raise InvalidResponse("The Hub's next-page link has no cursor.")
    return values[0]


def _matches(path: str, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _strip_front_matter(readme: str) -> str:
    return FRONT_MATTER.sub("", readme, count=1).lstrip("\n")


def _summary_of(body: str) -> str:
    """The first paragraph of prose of a card (headings, badges and HTML skipped), bounded."""
    for block in re.split(r"\n\s*\n", body):
        text = " ".join(line.strip() for line in block.strip().splitlines())
        if text and not text.startswith(("#", "<", "!", "[!", "|", "```", "---")):
            return text[:SUMMARY_MAX_CHARS]
    return ""


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


class HuggingFaceBackend(RegistryBackend):
    """ONNX models from a Hugging Face Hub endpoint: huggingface.co, an enterprise Hub, or a mirror/proxy of it."""

    name = "huggingface"
    label = "Hugging Face"
    description = (
        "Repositories of a Hugging Face Hub (or an Artifactory, Nexus or olah mirror of it) that hold ONNX files. "
        "Each repository becomes a model with one version: the commit its pinned revision points at."
    )
    parameters = (
        Parameter(
            "endpoint",
            type="url",
            default=DEFAULT_ENDPOINT,
            help="The Hub, or a mirror or proxy of its API (Artifactory, Nexus, olah).",
        ),
        Parameter("token", sensitive=True, help="An access token with read permission (private and gated models)."),
        Parameter("author", help="Only this organization's or user's repositories."),
        Parameter(
            "repositories",
            type="list",
            help="Only these repository ids (org/name; a bare name is taken under the author). Use this with a "
            "mirror that cannot list models.",
        ),
        Parameter(
            "filter",
            default="onnx",
            help="The library or tag the Hub filters the listing on. Repositories without an .onnx file are skipped "
            "whatever the filter.",
        ),
        Parameter("search", help="Only repositories whose id contains this text."),
        Parameter("revision", default="main", help="The branch, tag or commit to sync."),
        Parameter(
            "file_patterns",
            type="list",
            default=list(DEFAULT_FILE_PATTERNS),
            help="Globs of the files to import (matched against the path and the file name).",
        ),
    )
    # Repositories read per page; each costs three requests (info, tree, README).
    page_size: ClassVar[int] = 20

    # --- configuration ------------------------------------------------------------------------------------
    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        config["endpoint"] = (config.get("endpoint") or DEFAULT_ENDPOINT).rstrip("/")
        author = config.get("author") or ""
        if author and not BARE_NAME.match(author):
            raise ConfigurationError("author", f"“{author}” is not an organization or user name.")
        repositories = []
        for entry in config.get("repositories") or []:
            if author and BARE_NAME.match(entry):
                entry = f"{author}/{entry}"
            if not REPO_ID.match(entry):
                raise ConfigurationError("repositories", f"“{entry}” is not a repository id like org/name.")
            repositories.append(entry)
        config["repositories"] = sorted(set(repositories))
        revision = config.get("revision") or "main"
        if ".." in revision or revision.startswith("/") or any(ch.isspace() for ch in revision):
            raise ConfigurationError("revision", f"“{revision}” is not a branch, tag or commit.")
        config["revision"] = revision
        if not config.get("file_patterns"):
            config["file_patterns"] = list(DEFAULT_FILE_PATTERNS)

    # --- plumbing -----------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return (self.config.get("endpoint") or DEFAULT_ENDPOINT).rstrip("/")

    @property
    def revision(self) -> str:
        return self.config.get("revision") or "main"

    @property
    def file_patterns(self) -> list[str]:
        return list(self.config.get("file_patterns") or DEFAULT_FILE_PATTERNS)

    @property
    def http(self) -> HttpClient:
        if getattr(self, "_http", None) is None:
            token = self.config.get("token")
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            self._http = _HubHttpClient(policy=self.context.policy, timeout=self.context.timeout, headers=headers)
        return self._http

    def close(self) -> None:
        if getattr(self, "_http", None) is not None:
            self._http.close()
        super().close()

    def _api(self, path: str) -> str:
        return f"{self.endpoint}/api/{path}"

    # --- listing ------------------------------------------------------------------------------------------
    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        if self.config.get("repositories"):
            yield from self._iter_listed(cursor)
        else:
            yield from self._iter_hub(cursor)

    def _iter_listed(self, cursor: str | None) -> Iterator[ModelPage]:
        repositories: list[str] = self.config["repositories"]
        try:
            start = int(cursor) if cursor else 0
        except ValueError:
            raise InvalidResponse(f"“{cursor}” is not a cursor of this backend (an index).") from None
        for offset in range(start, len(repositories), self.page_size):
            batch = repositories[offset : offset + self.page_size]
            end = offset + len(batch)
            models = tuple(model for model in (self._model_or_skip(repo_id) for repo_id in batch) if model)
            yield ModelPage(models=models, cursor=str(end) if end < len(repositories) else None)
        if start >= len(repositories):
            yield ModelPage(models=(), cursor=None)

    def _iter_hub(self, cursor: str | None) -> Iterator[ModelPage]:
        params: dict[str, Any] = {"limit": self.page_size, "expand": ["siblings"]}
        for name in ("author", "filter", "search"):
            if self.config.get(name):
                params[name] = self.config[name]
        if cursor:
            if not cursor.startswith(HUB_CURSOR):
                raise InvalidResponse(f"“{cursor}” is not a cursor of this backend (a Hub cursor).")
            params["cursor"] = cursor[len(HUB_CURSOR) :]
        while True:
            url = self._api("models")
            response = self.http.request("GET", url, params=params)
            listing = self.http.json_of(response, url)
            if not isinstance(listing, list):
                raise InvalidResponse("The Hub's model listing is not a list.")
            hub_cursor = _next_cursor(response)
            models = []
            for entry in listing:
                repo_id = entry.get("id") if isinstance(entry, dict) else None
                if not isinstance(repo_id, str):
                    raise InvalidResponse("An entry of the Hub's model listing has no id.")
                siblings = entry.get("siblings")
                # The listing's siblings, when the Hub sends them, spare a request per repository without ONNX.
                if isinstance(siblings, list) and not any(
                    isinstance(s, dict) and str(s.get("rfilename", "")).endswith(".onnx") for s in siblings
                ):
                    continue
                model = self._model_or_skip(repo_id)
                if model:
                    models.append(model)
            yield ModelPage(models=tuple(models), cursor=HUB_CURSOR + hub_cursor if hub_cursor else None)
            if hub_cursor is None:
                return
            params["cursor"] = hub_cursor

    def _model_or_skip(self, repo_id: str) -> RemoteModel | None:
        """The repository as a model, or ``None`` when it has no ONNX file or is gone (a listed id can be stale)."""
        try:
            model = self._describe(repo_id)
        except NotFound:
            logger.warning("Hugging Face repository %s is listed but not found at %s; skipped.", repo_id, self.endpoint)
            return None
        if not model.metadata.get("has_onnx"):
            return None
        return model

    # --- one model ----------------------------------------------------------------------------------------
    def get_model(self, model_id: str) -> RemoteModel:
        if not REPO_ID.match(model_id):
            raise NotFound(f"“{model_id}” is not a Hugging Face repository id.")
        return self._describe(model_id)

    def _describe(self, repo_id: str) -> RemoteModel:
        url = self._api(f"models/{repo_id}/revision/{quote(self.revision, safe='')}")
        info = self.http.get_json(url)
        if not isinstance(info, dict) or not isinstance(info.get("sha"), str) or not FULL_SHA.match(info["sha"]):
            raise InvalidResponse(f"The Hub's description of {repo_id} has no commit sha.")
        commit: str = info["sha"]
        tree = self._tree(repo_id, commit)
        has_onnx = any(entry["path"].endswith(".onnx") for entry in tree)
        patterns = self.file_patterns
        files = tuple(
            RemoteFile(path=entry["path"], size=entry["size"], sha256=entry["sha256"], locator=commit)
            for entry in tree
            if _matches(entry["path"], patterns)
        )
        readme = self._readme(repo_id, commit) if any(entry["path"] == "README.md" for entry in tree) else ""
        card_data = info.get("cardData") if isinstance(info.get("cardData"), dict) else {}
        tags = list(dict.fromkeys(_string_list(info.get("tags")) + _string_list(card_data.get("tags"))))
        license_ = next(
            iter(_string_list(card_data.get("license"))),
            next((tag.split(":", 1)[1] for tag in tags if tag.startswith("license:")), ""),
        )
        task = info.get("pipeline_tag") or card_data.get("pipeline_tag") or ""
        body = _strip_front_matter(readme)
        aliases = () if FULL_SHA.match(self.revision) else (self.revision,)
        version = RemoteVersion(
            label=commit[:SHORT_COMMIT],
            files=files,
            aliases=aliases,
            created_at=str(info.get("lastModified") or ""),
            metadata={"commit": commit, "revision": self.revision},
        )
        # The commit says whether the repository changed; the patterns say whether the selection of its files did.
        patterns_digest = hashlib.sha256("\n".join(patterns).encode()).hexdigest()[:8]
        return RemoteModel(
            id=repo_id,
            name=repo_id.rsplit("/", 1)[-1],
            summary=_summary_of(body),
            card=body,
            task=task if isinstance(task, str) else "",
            tags=tuple(tags),
            license=license_,
            url=f"{self.endpoint}/{repo_id}",
            updated_at=str(info.get("lastModified") or ""),
            versions=(version,),
            metadata={
                "commit": commit,
                "has_onnx": has_onnx,
                "library_name": info.get("library_name") or card_data.get("library_name") or "",
                "gated": bool(info.get("gated")),
                "private": bool(info.get("private")),
            },
            fingerprint=f"{commit}-{patterns_digest}",
        )

    def _tree(self, repo_id: str, commit: str) -> list[dict[str, Any]]:
        """Every file of the repository at ``commit``: path, size, and sha256 where the Hub knows it (LFS)."""
        url = self._api(f"models/{repo_id}/tree/{commit}")
        params: dict[str, Any] = {"recursive": "true"}
        entries: list[dict[str, Any]] = []
        while True:
            response = self.http.request("GET", url, params=params)
            page = self.http.json_of(response, url)
            if not isinstance(page, list):
                raise InvalidResponse(f"The Hub's file tree of {repo_id} is not a list.")
            for item in page:
                if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                    raise InvalidResponse(f"An entry of the file tree of {repo_id} has no path.")
                if item.get("type") != "file":
                    continue
                lfs = item.get("lfs") if isinstance(item.get("lfs"), dict) else {}
                sha256 = lfs.get("oid") or lfs.get("sha256")
                size = lfs.get("size", item.get("size"))
                entries.append(
                    {
                        "path": item["path"],
                        "size": size if isinstance(size, int) else None,
                        "sha256": sha256 if isinstance(sha256, str) and len(sha256) == 64 else None,
                    }
                )
            cursor = _next_cursor(response)
            if cursor is None:
                return entries
            params["cursor"] = cursor

    def _readme(self, repo_id: str, commit: str) -> str:
        """README.md, at most ``CARD_MAX_BYTES`` of it: a card is text for people, not a place to store data."""
        url = hf_hub_url(repo_id, "README.md", revision=commit, endpoint=self.endpoint)
        body = bytearray()
        chunks = self.http.stream(url, chunk_size=64 * 1024)
        try:
            for chunk in chunks:
                body.extend(chunk)
                if len(body) >= CARD_MAX_BYTES:
                    break
        except NotFound:
            return ""
        finally:
            chunks.close()
        return bytes(body[:CARD_MAX_BYTES]).decode("utf-8", errors="replace")

    # --- files --------------------------------------------------------------------------------------------
    def open_file(self, model_id: str, version: str, file: RemoteFile) -> Iterator[bytes]:
        # A path outside the patterns is not a file of this version as the backend defines it; refusing it here
        # also keeps a stale or forged locator from reaching arbitrary files of the repository.
        if not REPO_ID.match(model_id) or not _matches(file.path, self.file_patterns) or ".." in file.path.split("/"):
            raise NotFound(f"{model_id}@{version} has no file {file.path} among the files this registry imports.")
        commit = file.locator if FULL_SHA.match(file.locator or "") else version
        url = hf_hub_url(model_id, file.path, revision=commit, endpoint=self.endpoint)
        yield from self.http.stream(url)


class OnnxModelZooBackend(HuggingFaceBackend):
    """The ONNX Model Zoo: the Hugging Face backend preset to the ``onnxmodelzoo`` organization."""

    name = "onnx-model-zoo"
    label = "ONNX Model Zoo"
    description = "The ONNX Model Zoo's models, published on Hugging Face by the onnxmodelzoo organization."
    presets: ClassVar[dict[str, Any]] = {"author": "onnxmodelzoo"}
