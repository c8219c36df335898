"""Serving blobs the way CDNs and clients cache well, with constant memory.

* a strong ETag, the SHA-256 (``"<sha256>"``); ``If-None-Match`` answers 304;
* ``Range``: one range → 206 with ``Content-Range``; several → 206 ``multipart/byteranges``; none satisfiable →
  416 with ``Content-Range: bytes */<size>``; ``If-Range`` with another validator serves the whole file;
* the whole file goes out through ``FileResponse`` (``wsgi.file_wrapper``: sendfile under gunicorn), a single
  range through the same with a bounded file, several ranges through a generator, 1 MiB at a time;
* ``DOWNLOAD_OFFLOAD``: ``x-accel-redirect`` (nginx serves ``DOWNLOAD_OFFLOAD_PREFIX`` + the storage name, Range
  included), ``x-sendfile`` (Apache, the local path) or ``storage-url`` (a redirect to the storage's URL, e.g. a
  presigned S3 URL);
* signed, expiring URLs (``TimestampSigner`` over the blob's SHA-256, the user and the version) for handing a
  download to a CDN, a script or another machine without a token.
"""

from __future__ import annotations

import mimetypes
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from apps.core.access import Visibility
from apps.marketplace.models import Blob, VersionStatus
from apps.marketplace.storage import CHUNK_SIZE, open_blob

MAX_RANGES = 64
IMMUTABLE_MAX_AGE = 31_536_000  # a year: content-addressed bytes never change

# Where a file a version lists but does not hold yet comes from: callables (version, path) -> VersionFile or None,
# appended by other apps (the registries app fetches a synced model's file from its registry on first use).
missing_file_sources: list[Callable[[Any, str], Any]] = []


class FileSourceFailed(Exception):
    """A file source could not deliver the file (its registry is down, the bytes failed their checksum...)."""


def fetch_missing_file(version: Any, path: str) -> Any:
    """The ``VersionFile`` a file source provides for ``path`` of ``version`` now, or None when none knows it.

    A source's own error is raised as ``FileSourceFailed`` with its message (the views answer 502).
    """
    for source in missing_file_sources:
        try:
            found = source(version, path)
        except Exception as exc:
            raise FileSourceFailed(str(exc) or type(exc).__name__) from exc
        if found is not None:
            return found
    return None


SIGNING_SALT = "marketplace.blob-download"
RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")

# Called once per answer with (HTTP status, bytes the body will carry).
ServedCallback = Callable[[int, int], None]


# --- ranges ------------------------------------------------------------------------------------------------------


class Unsatisfiable(Exception):
    pass


def parse_range_header(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges asked for, as inclusive (start, end) pairs clipped to ``size``; None to serve the whole file
    (no header, a syntax the server ignores, or too many ranges). Raises Unsatisfiable when none overlaps the file."""
    if not header:
        return None
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        return None
    ranges: list[tuple[int, int]] = []
    parts = specs.split(",")
    if len(parts) > MAX_RANGES:
        return None
    for part in parts:
        match = RANGE_SPEC.match(part)
        if not match:
            return None  # a malformed Range header is ignored (RFC 9110 §14.2)
        first, last = match.groups()
        if first == "" and last == "":
            return None
        if first == "":  # suffix: the last N bytes
            length = int(last)
            if length == 0:
                continue
            start, end = max(0, size - length), size - 1
        else:
            start = int(first)
            end = int(last) if last != "" else size - 1
            if last != "" and end < start:
                return None
            if start >= size:
                continue
            end = min(end, size - 1)
        if size > 0:
            ranges.append((start, end))
    if not ranges:
        raise Unsatisfiable
    return ranges


def etag_for(blob: Blob) -> str:
    return f'"{blob.sha256}"'


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses weak comparison: ``W/"x"`` matches ``"x"``; ``*`` matches anything."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


class _BoundedFile:
    """Part of an open file: reading stops after ``length`` bytes; ``fileno``/``tell`` let gunicorn use sendfile."""

    def __init__(self, handle: Any, start: int, length: int) -> None:
        handle.seek(start)
        self._handle = handle
        self._left = length
        try:
            self._fileno = handle.fileno()
        except (AttributeError, OSError, ValueError):
            self._fileno = None

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        if size is None or size < 0 or size > self._left:
            size = self._left
        data = self._handle.read(size)
        self._left -= len(data)
        return data

    def tell(self) -> int:
        return self._handle.tell()

    def fileno(self) -> int:
        if self._fileno is None:
            raise OSError("not a real file")
        return self._fileno

    def close(self) -> None:
        self._handle.close()


def _iter_part(handle: Any, start: int, end: int) -> Iterator[bytes]:
    handle.seek(start)
    left = end - start + 1
    while left > 0:
        data = handle.read(min(CHUNK_SIZE, left))
        if not data:
            return
        left -= len(data)
        yield data


# --- answers ------------------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """What to send: a blob under a file name, with its cache policy."""

    blob: Blob
    filename: str
    cache_control: str


def content_type_for(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def _disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "ignore").decode().replace('"', "") or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _common_headers(response: HttpResponse, delivery: Delivery) -> HttpResponse:
    response.headers["ETag"] = etag_for(delivery.blob)
    response.headers["Cache-Control"] = delivery.cache_control
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["X-Content-SHA256"] = delivery.blob.sha256
    vary = "Authorization, Cookie" if delivery.cache_control.startswith("private") else None
    if vary:
        response.headers["Vary"] = vary
    return response


def serve_blob(request: Any, delivery: Delivery, *, on_served: ServedCallback | None = None) -> HttpResponse:
    """Answer a GET or HEAD for ``delivery.blob`` (304, 200, 206, 416, or an offload) and report what was sent."""
    blob = delivery.blob
    size = blob.size
    etag = etag_for(blob)
    head = request.method == "HEAD"

    def served(status: int, sent: int) -> None:
        if on_served is not None:
            on_served(status, 0 if head else sent)

    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and _etag_matches(if_none_match, etag):
        served(304, 0)
        return _common_headers(HttpResponse(status=304), delivery)

    offload = getattr(settings, "DOWNLOAD_OFFLOAD", "") or ""
    if offload and not head:
        response = _offload(offload, delivery)
        if response is not None:
            served(response.status_code, 0)
            return response

    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header and if_range and if_range.strip() != etag:
        range_header = None  # the client's copy changed: send it all
    try:
        ranges = parse_range_header(range_header, size)
    except Unsatisfiable:
        response = HttpResponse(status=416)
        response.headers["Content-Range"] = f"bytes */{size}"
        served(416, 0)
        return _common_headers(response, delivery)

    content_type = content_type_for(delivery.filename)
    if head:
        response = HttpResponse(status=200, content_type=content_type)
        response.headers["Content-Length"] = str(size)
        response.headers["Content-Disposition"] = _disposition(delivery.filename)
        served(200, 0)
        return _common_headers(response, delivery)

    if ranges is None:
        response = FileResponse(
            open_blob(blob), as_attachment=True, filename=delivery.filename, content_type=content_type
        )
        response.headers["Content-Length"] = str(size)
        served(200, size)
        return _common_headers(response, delivery)

    if len(ranges) == 1:
        start, end = ranges[0]
        length = end - start + 1
        response = FileResponse(
            _BoundedFile(open_blob(blob), start, length),
            as_attachment=True,
            filename=delivery.filename,
            content_type=content_type,
            status=206,
        )
        response.headers["Content-Length"] = str(length)
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        served(206, length)
        return _common_headers(response, delivery)

    boundary = secrets.token_hex(16)
    heads = [
        (f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n").encode()
        for start, end in ranges
    ]
    tail = f"--{boundary}--\r\n".encode()
    body_bytes = sum(end - start + 1 for start, end in ranges)
    length = sum(len(h) for h in heads) + body_bytes + 2 * len(ranges) + len(tail)

    def body() -> Iterator[bytes]:
        handle = open_blob(blob)
        try:
            for part_head, (start, end) in zip(heads, ranges, strict=True):
                yield part_head
                yield from _iter_part(handle, start, end)
                yield b"\r\n"
            yield tail
        finally:
            handle.close()

    response = StreamingHttpResponse(body(), status=206, content_type=f"multipart/byteranges; boundary={boundary}")
    response.headers["Content-Length"] = str(length)
    response.headers["Content-Disposition"] = _disposition(delivery.filename)
    served(206, body_bytes)
    return _common_headers(response, delivery)


def storage_url(blob: Blob, filename: str) -> str:
    """The storage's own URL for ``blob``. A presigned S3 URL also carries the file's name and type (S3 answers with
    them as Content-Disposition and Content-Type), so the download is saved as ``model.onnx``, not as its digest."""
    from storages.backends.s3 import S3Storage  # django-storages[s3] is a dependency; boto3 loads only when needed

    if (
        isinstance(default_storage, S3Storage)
        and default_storage.querystring_auth
        and not default_storage.custom_domain
    ):
        parameters = {
            "ResponseContentDisposition": _disposition(filename),
            "ResponseContentType": content_type_for(filename),
        }
        return default_storage.url(blob.storage_name, parameters=parameters)
    return default_storage.url(blob.storage_name)


def _offload(mode: str, delivery: Delivery) -> HttpResponse | None:
    blob = delivery.blob
    if mode == "storage-url":
        return _common_headers(HttpResponseRedirect(storage_url(blob, delivery.filename)), delivery)
    response = HttpResponse(content_type=content_type_for(delivery.filename))
    response.headers["Content-Disposition"] = _disposition(delivery.filename)
    if mode == "x-accel-redirect":
        prefix = settings.DOWNLOAD_OFFLOAD_PREFIX.rstrip("/") + "/"
        response.headers["X-Accel-Redirect"] = quote(prefix + blob.storage_name)
    elif mode == "x-sendfile":
        try:
            response.headers["X-Sendfile"] = default_storage.path(blob.storage_name)
        except NotImplementedError:
            return None
    else:
        return None
    return _common_headers(response, delivery)


# --- signed URLs ----------------------------------------------------------------------------------------------


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SIGNING_SALT)


def sign_blob_access(*, blob: Blob, user: Any, version: Any, path: str) -> str:
    """A token that lets anyone holding it download ``blob`` (as ``path`` of ``version``) until it expires."""
    payload = {
        "s": blob.sha256,
        "u": user.pk if getattr(user, "is_authenticated", False) else None,
        "v": str(version.uuid),
        "p": path,
    }
    return _signer().sign_object(payload, compress=True)


@dataclass
class SignedAccess:
    sha256: str
    user_id: int | None
    version_uuid: str
    path: str


class SignatureInvalid(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def check_blob_access(token: str, *, sha256: str) -> SignedAccess:
    """The access a signed token grants for ``sha256``; SignatureInvalid when expired, tampered or for other bytes."""
    try:
        payload = _signer().unsign_object(token, max_age=settings.SIGNED_DOWNLOAD_URL_TTL_SECONDS)
    except signing.SignatureExpired as exc:
        raise SignatureInvalid("This download link has expired; ask for a new one.", "signature_expired") from exc
    except signing.BadSignature as exc:
        raise SignatureInvalid("This download link's signature is not valid.", "bad_signature") from exc
    if not isinstance(payload, dict) or payload.get("s") != sha256:
        raise SignatureInvalid("This download link is for other content.", "bad_signature")
    return SignedAccess(
        sha256=sha256, user_id=payload.get("u"), version_uuid=payload.get("v", ""), path=payload.get("p", "")
    )


def basename(path: str) -> str:
    return os.path.basename(path) or "download"


def cache_control(version: Any, *, immutable: bool) -> str:
    """The ``Cache-Control`` of a version's file: public only for a public model's unyanked version; immutable
    (cached for a year) only where asked and the version is frozen, else revalidated."""
    audience = (
        "public"
        if version.model.visibility == Visibility.PUBLIC and version.status != VersionStatus.YANKED
        else "private"
    )
    if immutable and version.is_frozen:
        return f"{audience}, max-age={IMMUTABLE_MAX_AGE}, immutable"
    return f"{audience}, no-cache"
