"""``HttpIndexBackend``: models listed in an open index file any web server or bucket can publish.

The format is docs/registries/http-index-format.md: JSON Lines (one model a line, read as a stream) or JSON
pages linked by ``next``. An enterprise publishes one with no code: a file next to its model files.

Errors: a document that cannot be read at all (malformed JSON page, an unsupported ``gpux_index`` version, a
``next`` link seen before, a line over ``MAX_LINE_BYTES``) raises ``InvalidResponse``. A single model entry
that fails validation is left out of the listing and recorded in ``self.skipped`` (where and why), so one bad
line costs one model, not the whole sync; the sync engine reads ``skipped`` after a listing to report them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import quote, urljoin, urlsplit

from apps.core.parsing import loads_json
from apps.registries.sdk import (
    BackendContext,
    HttpClient,
    InvalidResponse,
    ModelPage,
    NotFound,
    Parameter,
    RegistryBackend,
    RegistryError,
    RemoteFile,
    RemoteModel,
    RemoteVersion,
)

FORMAT_VERSION = 1
# One line of a JSON Lines index is one model: a card of a few hundred kilobytes is generous, 16 MiB is not a model.
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_ID_LENGTH = 500
JSONL_SUFFIXES = (".jsonl", ".ndjson")
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SkippedEntry(NamedTuple):
    """A model entry left out of the listing: ``location`` ("line 12", "<page URL> models[3]"), ``reason``,
    and the entry's ``model_id`` when it had a readable one ("" otherwise)."""

    location: str
    reason: str
    model_id: str = ""


class BadEntry(Exception):
    """Raised inside the parser for one entry that fails validation; never leaves this module."""


def _text(entry: dict, key: str, where: str = "") -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadEntry(f"“{where}{key}” must be a string, not {type(value).__name__}.")
    return value


def _strings(entry: dict, key: str, where: str = "") -> tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadEntry(f"“{where}{key}” must be a list of strings.")
    return tuple(value)


def _metadata(entry: dict, where: str = "") -> dict[str, Any]:
    value = entry.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadEntry(f"“{where}metadata” must be an object.")
    return value


def _file_path(value: Any, where: str) -> str:
    """A file's path inside its version: relative, forward slashes, no ``..`` (the portal stores files by it)."""
    if not isinstance(value, str) or not value:
        raise BadEntry(f"“{where}path” is required and must be a string.")
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or CONTROL.search(value) or any(p in ("", ".", "..") for p in parts):
        raise BadEntry(f"“{where}path” {value!r} must be a relative path without “..”, “.” or empty segments.")
    return value


UNRESERVED = re.compile(r"^[A-Za-z0-9._~-]+$")


def _quoted_segment(segment: str) -> str:
    return segment if UNRESERVED.match(segment) else quote(segment, safe="")


def _quoted_path(path: str) -> str:
    return "/".join(_quoted_segment(part) for part in path.split("/"))


@functools.lru_cache(maxsize=64)
def _directory_of(url: str) -> str:
    """The URL of the directory ``url`` is in (what a relative path is resolved against), with its slash."""
    return urljoin(url, ".")


def parse_model(entry: Any, base_url: str) -> RemoteModel:
    """One model object of the index as a ``RemoteModel``; ``BadEntry`` saying which field is wrong.

    Relative URLs (files, the model's page) are resolved against ``base_url``, the document that lists them. A
    file without ``url`` is at ``<id>/<version label>/<path>`` relative to it.
    """
    if not isinstance(entry, dict):
        raise BadEntry(f"A model entry must be an object, not {type(entry).__name__}.")
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id.strip():
        raise BadEntry("“id” is required and must be a non-empty string.")
    if len(model_id) > MAX_ID_LENGTH or CONTROL.search(model_id):
        raise BadEntry(f"“id” must be at most {MAX_ID_LENGTH} characters without control characters.")
    raw_versions = entry.get("versions")
    if raw_versions is None:
        raw_versions = []
    if not isinstance(raw_versions, list):
        raise BadEntry("“versions” must be a list.")
    versions: list[RemoteVersion] = []
    labels: set[str] = set()
    quoted_id: str | None = None
    for v_index, raw_version in enumerate(raw_versions):
        where = f"versions[{v_index}]."
        if not isinstance(raw_version, dict):
            raise BadEntry(f"“versions[{v_index}]” must be an object.")
        label = raw_version.get("label")
        if not isinstance(label, str) or not label.strip() or CONTROL.search(label) or "/" in label:
            raise BadEntry(f"“{where}label” is required: a non-empty string without “/”.")
        if label in labels:
            raise BadEntry(f"Version “{label}” is listed twice.")
        labels.add(label)
        raw_files = raw_version.get("files")
        if raw_files is None:
            raw_files = []
        if not isinstance(raw_files, list):
            raise BadEntry(f"“{where}files” must be a list.")
        files: list[RemoteFile] = []
        paths: set[str] = set()
        for f_index, raw_file in enumerate(raw_files):
            f_where = f"{where}files[{f_index}]."
            if not isinstance(raw_file, dict):
                raise BadEntry(f"“{where}files[{f_index}]” must be an object.")
            path = _file_path(raw_file.get("path"), f_where)
            if path in paths:
                raise BadEntry(f"File “{path}” of version “{label}” is listed twice.")
            paths.add(path)
            size = raw_file.get("size")
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
                raise BadEntry(f"“{f_where}size” must be a whole number of bytes, 0 or more.")
            sha256 = raw_file.get("sha256")
            if sha256 is not None and (not isinstance(sha256, str) or not SHA256.match(sha256)):
                raise BadEntry(f"“{f_where}sha256” must be 64 hexadecimal digits.")
            url = _text(raw_file, "url", f_where)
            if url:
                locator = urljoin(base_url, url)
                if urlsplit(locator).scheme not in ("http", "https"):
                    raise BadEntry(f"“{f_where}url” must be an http(s) URL or a path relative to the index.")
            else:
                # The default place, <id>/<label>/<path> next to the document: every segment is quoted and none is
                # "." or "..", so joining is concatenation (urljoin per file costs more than the rest of the entry).
                if quoted_id is None:
                    quoted_id = _quoted_path(model_id)
                locator = f"{_directory_of(base_url)}{quoted_id}/{_quoted_segment(label)}/{_quoted_path(path)}"
            files.append(RemoteFile(path=path, size=size, sha256=sha256.lower() if sha256 else None, locator=locator))
        versions.append(
            RemoteVersion(
                label=label,
                files=tuple(files),
                aliases=_strings(raw_version, "aliases", where),
                description=_text(raw_version, "description", where),
                created_at=_text(raw_version, "created_at", where),
                metadata=_metadata(raw_version, where),
            )
        )
    page_url = _text(entry, "url")
    return RemoteModel(
        id=model_id,
        name=_text(entry, "name"),
        summary=_text(entry, "summary"),
        card=_text(entry, "card"),
        task=_text(entry, "task"),
        tags=_strings(entry, "tags"),
        license=_text(entry, "license"),
        url=urljoin(base_url, page_url) if page_url else "",
        updated_at=_text(entry, "updated_at"),
        fingerprint=_text(entry, "fingerprint"),
        versions=tuple(versions),
        metadata=_metadata(entry),
    )


def _check_format_version(document: dict, where: str) -> None:
    version = document.get("gpux_index", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise InvalidResponse(
            f"{where} declares gpux_index {version!r}; this portal reads version {FORMAT_VERSION} of the format."
        )


def _lines(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` from a byte stream, 1-based, without holding more than one line in memory."""
    pending = bytearray()
    number = 0
    for chunk in chunks:
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            number += 1
            yield number, bytes(pending[start:end]).rstrip(b"\r")
            start = end + 1
        del pending[:start]
        if len(pending) > MAX_LINE_BYTES:
            raise InvalidResponse(f"Line {number + 1} of the index is longer than {MAX_LINE_BYTES} bytes.")
    if pending:
        yield number + 1, bytes(pending).rstrip(b"\r")


class HttpIndexBackend(RegistryBackend):
    """Models listed in an HTTP index file: JSON Lines streamed, or JSON pages linked by ``next``."""

    name = "http-index"
    label = "HTTP index"
    description = (
        "An index file on any web server or bucket (JSON Lines, or JSON pages linked by “next”) that lists "
        "models, versions and file URLs. See the HTTP index format in the documentation."
    )
    parameters = (
        Parameter("url", type="url", required=True, label="Index URL", help="Where the index file is served."),
        Parameter("token", sensitive=True, help="Sent as “Authorization: Bearer …” to the index's own host only."),
        Parameter(
            "format",
            type="choice",
            choices=("auto", "jsonl", "json"),
            default="auto",
            help="auto: JSON Lines for .jsonl/.ndjson URLs, JSON for .json, otherwise read from the first line.",
        ),
        Parameter("page_size", type="integer", default=1000, min_value=1, max_value=100_000, help="Models per page."),
    )

    def __init__(self, config: dict[str, Any], *, context: BackendContext | None = None) -> None:
        super().__init__(config, context=context)
        # Entries left out of the latest listing: the sync engine reports them as per-model errors.
        self.skipped: list[SkippedEntry] = []
        self._clients: dict[bool, HttpClient] = {}

    # --- HTTP ---------------------------------------------------------------------------------------------
    @property
    def index_url(self) -> str:
        return self.config["url"]

    def _client_for(self, url: str) -> HttpClient:
        # The token goes only to the index's own origin: file URLs may point at a CDN or another bucket, and a
        # bearer token sent there would leak.
        same_origin = urlsplit(url)[:2] == urlsplit(self.index_url)[:2]
        authorized = bool(self.config.get("token")) and same_origin
        if authorized not in self._clients:
            if authorized:
                self._clients[authorized] = self.context.http_with({"Authorization": f"Bearer {self.config['token']}"})
            else:
                self._clients[authorized] = self.context.http_with({})
        return self._clients[authorized]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        super().close()

    # --- listing ------------------------------------------------------------------------------------------
    def _page_size(self) -> int:
        return int(self.config.get("page_size") or 1000)

    def listing_snapshot(self) -> str | None:
        """The index file's ETag or Last-Modified (with its length), from a HEAD request: a JSON Lines index is one
        document, so an unchanged validator means an unchanged listing. Paginated JSON has one per page: None."""
        if self._declared_format() != "jsonl":
            return None
        try:
            headers = self._client_for(self.index_url).head(self.index_url)
        except RegistryError:
            return None  # no snapshot: the listing is read (and its own errors reported there)
        length = headers.get("content-length", "")
        if headers.get("etag"):
            return f"etag:{headers['etag']};length:{length}"
        if headers.get("last-modified"):
            return f"last-modified:{headers['last-modified']};length:{length}"
        return None

    def _declared_format(self) -> str:
        chosen = self.config.get("format") or "auto"
        if chosen != "auto":
            return chosen
        path = urlsplit(self.index_url).path.lower()
        if path.endswith(JSONL_SUFFIXES):
            return "jsonl"
        if path.endswith(".json"):
            return "json"
        return "auto"

    def iter_models(self, cursor: str | None = None) -> Iterator[ModelPage]:
        """Pages of ``page_size`` models. Cursors: ``line:<n>`` (JSON Lines, resume after line n) or
        ``page:<offset>:<url>`` (JSON pages, resume at that page, ``offset`` entries in)."""
        self.skipped = []
        yield from self._pages(cursor, self.skipped)

    def _pages(self, cursor: str | None, skipped: list[SkippedEntry]) -> Iterator[ModelPage]:
        if cursor:
            kind, _, rest = cursor.partition(":")
            if kind == "line" and rest.isdigit():
                yield from self._jsonl_pages(int(rest), skipped)
                return
            offset, _, url = rest.partition(":")
            if kind == "page" and offset.isdigit() and url:
                yield from self._json_pages(urljoin(self.index_url, url), int(offset), skipped)
                return
            raise InvalidResponse(f"The cursor {cursor[:80]!r} was not made by the HTTP index backend.")
        declared = self._declared_format()
        if declared == "jsonl":
            yield from self._jsonl_pages(0, skipped)
        elif declared == "json":
            yield from self._json_pages(self.index_url, 0, skipped)
        else:
            yield from self._sniffed_pages(skipped)

    def _sniffed_pages(self, skipped: list[SkippedEntry]) -> Iterator[ModelPage]:
        """The first non-blank line tells: an object with ``models`` is a one-line JSON page, another object is
        JSON Lines, and a line that is no JSON on its own starts a pretty-printed JSON page."""
        with contextlib.closing(self._client_for(self.index_url).stream(self.index_url)) as chunks:
            lines = _lines(chunks)
            for number, line in lines:
                if not line.strip():
                    continue
                try:
                    first = loads_json(line)
                except (ValueError, UnicodeDecodeError):
                    break
                if isinstance(first, dict) and "models" in first:
                    yield from self._json_document_pages(first, self.index_url, 0, {self.index_url}, skipped)
                    return
                yield from self._jsonl_from(itertools.chain([(number, line)], lines), 0, skipped)
                return
            else:
                yield ModelPage(models=(), cursor=None)
                return
        yield from self._json_pages(self.index_url, 0, skipped)

    # --- JSON Lines ---------------------------------------------------------------------------------------
    def _jsonl_pages(self, after_line: int, skipped: list[SkippedEntry]) -> Iterator[ModelPage]:
        with contextlib.closing(self._client_for(self.index_url).stream(self.index_url)) as chunks:
            yield from self._jsonl_from(_lines(chunks), after_line, skipped)

    def _jsonl_from(
        self, lines: Iterator[tuple[int, bytes]], after_line: int, skipped: list[SkippedEntry]
    ) -> Iterator[ModelPage]:
        """Models from the lines after ``after_line``; a page is yielded once the next model is read, so the last
        page is known to be last and carries no cursor."""
        size = self._page_size()
        page: list[RemoteModel] = []
        page_end = 0
        yielded = False
        seen_ids: set[str] = set()
        header_allowed = after_line == 0
        for number, raw in lines:
            if number <= after_line or not raw.strip():
                continue
            try:
                entry = loads_json(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                skipped.append(SkippedEntry(f"line {number}", f"The line is not valid JSON: {exc}"))
                header_allowed = False
                continue
            if header_allowed and isinstance(entry, dict) and "gpux_index" in entry and "id" not in entry:
                _check_format_version(entry, "The index's first line")
                header_allowed = False
                continue
            header_allowed = False
            model = self._parse_or_skip(entry, self.index_url, f"line {number}", seen_ids, skipped)
            if model is None:
                continue
            if len(page) == size:
                yield ModelPage(models=tuple(page), cursor=f"line:{page_end}")
                yielded = True
                page = []
            page.append(model)
            page_end = number
        if page or not yielded:
            yield ModelPage(models=tuple(page), cursor=None)

    # --- JSON pages ---------------------------------------------------------------------------------------
    def _json_pages(self, url: str, offset: int, skipped: list[SkippedEntry]) -> Iterator[ModelPage]:
        seen = {url}
        document = self._client_for(url).get_json(url)
        yield from self._json_document_pages(document, url, offset, seen, skipped)

    def _json_document_pages(
        self, document: Any, url: str, offset: int, seen: set[str], skipped: list[SkippedEntry]
    ) -> Iterator[ModelPage]:
        """Each document split into pages of ``page_size``; then its ``next``, until a document has none."""
        size = self._page_size()
        # Ids are unique across the whole index, not only within one page.
        seen_ids: set[str] = set()
        while True:
            if not isinstance(document, dict) or not isinstance(document.get("models"), list):
                raise InvalidResponse(f"{url} is not an index page: expected an object with a “models” list.")
            _check_format_version(document, url)
            following = document.get("next")
            if following is not None and (not isinstance(following, str) or not following):
                raise InvalidResponse(f"{url}: “next” must be a URL or null.")
            next_url = urljoin(url, following) if following else None
            if next_url is not None and next_url in seen:
                raise InvalidResponse(f"{url}: “next” leads back to {next_url}, a page already read (a loop).")
            entries = document["models"]
            for start in range(offset, max(len(entries), offset + 1), size):
                models = []
                for index in range(start, min(start + size, len(entries))):
                    model = self._parse_or_skip(entries[index], url, f"{url} models[{index}]", seen_ids, skipped)
                    if model is not None:
                        models.append(model)
                end = start + size
                if end < len(entries):
                    yield ModelPage(models=tuple(models), cursor=f"page:{end}:{url}")
                else:
                    yield ModelPage(models=tuple(models), cursor=f"page:0:{next_url}" if next_url else None)
            if next_url is None:
                return
            seen.add(next_url)
            url, offset = next_url, 0
            document = self._client_for(url).get_json(url)

    @staticmethod
    def _parse_or_skip(
        entry: Any, base_url: str, location: str, seen_ids: set[str], skipped: list[SkippedEntry]
    ) -> RemoteModel | None:
        model_id = entry.get("id") if isinstance(entry, dict) and isinstance(entry.get("id"), str) else ""
        try:
            model = parse_model(entry, base_url)
        except BadEntry as exc:
            skipped.append(SkippedEntry(location, str(exc), model_id))
            return None
        # Ids are unique within a document; a repeat is most likely a copy-paste error, the first one wins.
        if model.id in seen_ids:
            skipped.append(SkippedEntry(location, f"The id “{model.id}” is listed more than once.", model.id))
            return None
        seen_ids.add(model.id)
        return model

    # --- one model, files ---------------------------------------------------------------------------------
    def get_model(self, model_id: str) -> RemoteModel:
        # A static index has no per-model address: read it until the model turns up (stops at the first match).
        with contextlib.closing(self._pages(None, [])) as pages:
            for page in pages:
                for model in page.models:
                    if model.id == model_id:
                        return model
        raise NotFound(f"The index lists no model “{model_id}”.")

    def open_file(self, model_id: str, version: str, file: RemoteFile) -> Iterator[bytes]:
        url = urljoin(self.index_url, file.locator or file.path)
        yield from self._client_for(url).stream(url)
