"""The content-addressed blob store, over Django's default storage (file system here, S3 through django-storages).

Writing a file streams it, in chunks, to a spool file in ``MARKETPLACE_UPLOAD_DIR`` while hashing it (constant
memory), then moves it to ``blobs/sha256/<aa>/<bb>/<sha256>`` unless those bytes are already stored, in which
case the spool file is dropped: the same bytes uploaded by any organization are stored once.

Quota: an organization's usage is the size of the distinct blobs its versions reference (soft-deleted models
included until purged) plus the declared size of its open upload sessions. It is checked before an upload is
accepted (declared size, Content-Length) and again once the bytes are in.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from apps.marketplace.exceptions import QuotaExceeded
from apps.marketplace.models import LIVE_UPLOAD_STATUSES, Blob, UploadSession, VersionFile, blob_storage_name

CHUNK_SIZE = 1024 * 1024


@dataclass
class SpooledFile:
    """Bytes received and hashed, waiting in the spool directory to become a blob (or be dropped)."""

    path: Path
    size: int
    sha256: str

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class _MovableFile(File):
    """A spool file the file-system storage may rename into place instead of copying."""

    def temporary_file_path(self) -> str:
        return self.name


def spool_dir() -> Path:
    path = Path(settings.MARKETPLACE_UPLOAD_DIR) / "spool"
    path.mkdir(parents=True, exist_ok=True)
    return path


def iter_file_chunks(fileobj: IO[bytes], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            return
        yield chunk


def spool_chunks(chunks: Iterable[bytes], *, limit: int | None = None) -> SpooledFile:
    """Write ``chunks`` to a new spool file while hashing them. Past ``limit`` bytes: QuotaExceeded, nothing kept."""
    digest = hashlib.sha256()
    size = 0
    handle = tempfile.NamedTemporaryFile(dir=spool_dir(), prefix="in-", suffix=".part", delete=False)  # noqa: SIM115
    try:
        with handle:
            for chunk in chunks:
                size += len(chunk)
                if limit is not None and size > limit:
                    raise QuotaExceeded(
                        f"The file is larger than the {filesizeformat(limit)} the organization's quota has left."
                    )
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        os.unlink(handle.name)
        raise
    return SpooledFile(path=Path(handle.name), size=size, sha256=digest.hexdigest())


def spool_uploaded_file(uploaded: Any, *, limit: int | None = None) -> SpooledFile:
    """Spool a Django UploadedFile (or any file object) chunk by chunk."""
    if hasattr(uploaded, "chunks"):
        return spool_chunks(uploaded.chunks(CHUNK_SIZE), limit=limit)
    return spool_chunks(iter_file_chunks(uploaded), limit=limit)


def hash_local_file(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for chunk in iter_file_chunks(handle):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def store_spooled(spooled: SpooledFile) -> Blob:
    """Turn a spool file into a Blob: move it to its content address, or drop it when the bytes are stored already.

    The Blob row is committed on its own: if what references it fails afterwards, the blob is unreferenced and
    the purge job removes it (after a grace period, so a concurrent upload of the same bytes is safe).
    """
    existing = Blob.objects.filter(sha256=spooled.sha256).first()
    # Marking the blob as just used keeps the purge (which re-checks this under a lock) away from it.
    if (
        existing is not None
        and default_storage.exists(existing.storage_name)
        and Blob.objects.filter(pk=existing.pk).update(referenced_at=timezone.now())
    ):
        spooled.discard()
        return existing
    name = blob_storage_name(spooled.sha256)
    try:
        if not default_storage.exists(name):
            with open(spooled.path, "rb") as handle:
                saved = default_storage.save(name, _MovableFile(handle, name=str(spooled.path)))
            if saved != name:
                # Someone stored the same bytes at the same moment; theirs is identical, keep one.
                default_storage.delete(saved)
    finally:
        spooled.discard()
    try:
        with transaction.atomic():
            blob, _ = Blob.objects.get_or_create(
                sha256=spooled.sha256, defaults={"size": spooled.size, "storage_name": name}
            )
    except IntegrityError:
        blob = Blob.objects.get(sha256=spooled.sha256)
    return blob


class _S3ObjectReader:
    """A read-only, seekable S3 object that streams: each read continues one ranged GET from the current position.

    django-storages' S3File downloads the whole object (into memory by default) on the first read, so a ranged
    download of a few bytes would fetch a multi-gigabyte model and hold it. This reader keeps memory flat and asks
    S3 only for the bytes from the position on (a seek drops the open response; the next read starts a new GET).
    """

    def __init__(self, obj: Any, size: int, params: dict[str, Any]) -> None:
        self._obj = obj
        self._params = params
        self._size = size
        self._position = 0
        self._body: Any = None
        self.closed = False

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        position = max(0, base + offset)
        if position != self._position:
            self._drop_body()
        self._position = position
        return position

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if self._position >= self._size or size == 0:
            return b""
        if self._body is None:
            extra = {"Range": f"bytes={self._position}-"} if self._position else {}
            self._body = self._obj.get(**self._params, **extra)["Body"]
        data = self._body.read(None if size is None or size < 0 else size)
        self._position += len(data)
        return data

    def fileno(self) -> int:
        raise OSError("an S3 object has no file descriptor")

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        self.closed = True

    def __enter__(self) -> _S3ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _s3_reader(name: str) -> _S3ObjectReader | None:
    """A streaming reader when the default storage is django-storages' S3Storage (not gzipping); else None."""
    try:
        from botocore.exceptions import ClientError
        from s3transfer.constants import ALLOWED_DOWNLOAD_ARGS
        from storages.backends.s3 import S3Storage
        from storages.utils import clean_name
    except ImportError:
        return None
    if not isinstance(default_storage, S3Storage) or default_storage.gzip:
        return None
    params = {
        key: value for key, value in default_storage.get_object_parameters(name).items() if key in ALLOWED_DOWNLOAD_ARGS
    }
    obj = default_storage.bucket.Object(default_storage._normalize_name(clean_name(name)))
    try:
        obj.load(**params)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            raise FileNotFoundError(f"File does not exist: {name}") from exc
        raise
    return _S3ObjectReader(obj, obj.content_length, params)


def open_blob(blob: Blob, mode: str = "rb") -> Any:
    """The blob's bytes as a file object: the storage's own, or on S3 a streaming reader (constant memory)."""
    if mode == "rb":
        reader = _s3_reader(blob.storage_name)
        if reader is not None:
            return reader
    return default_storage.open(blob.storage_name, mode)


def local_blob_path(blob: Blob) -> str | None:
    """The blob's path on the local file system, when the storage has one (for sendfile offload)."""
    try:
        return default_storage.path(blob.storage_name)
    except NotImplementedError:
        return None


def delete_blob_file(blob: Blob) -> None:
    default_storage.delete(blob.storage_name)


# --- quota ----------------------------------------------------------------------------------------------------


def quota_for(organization: Any) -> int | None:
    """The organization's quota in bytes, None for unlimited: its own, else its plan's
    (apps.analytics.quotas), else ``DEFAULT_STORAGE_QUOTA_BYTES``."""
    if organization.storage_quota_bytes is not None:
        return organization.storage_quota_bytes
    from apps.analytics.quotas import plan_storage_bytes

    planned = plan_storage_bytes(organization.pk)
    if planned is not None:
        return planned or None
    default = getattr(settings, "DEFAULT_STORAGE_QUOTA_BYTES", 0)
    return default or None


def stored_bytes(organization: Any) -> int:
    """Bytes of the distinct blobs the organization's versions reference (soft-deleted models included)."""
    referenced = VersionFile.objects.filter(blob=OuterRef("pk"), version__model__organization=organization)
    total = Blob.objects.filter(Exists(referenced)).aggregate(total=Sum("size"))["total"]
    return int(total or 0)


def reserved_bytes(organization: Any, *, exclude_session: UploadSession | None = None) -> int:
    """Bytes declared by the organization's open (or verifying) upload sessions that are still to come."""
    sessions = UploadSession.objects.filter(
        version__model__organization=organization, status__in=LIVE_UPLOAD_STATUSES, expires_at__gt=timezone.now()
    )
    if exclude_session is not None:
        sessions = sessions.exclude(pk=exclude_session.pk)
    total = sessions.aggregate(total=Sum("size"))["total"]
    return int(total or 0)


def organization_references(organization: Any, sha256: str) -> bool:
    """Whether the organization already stores these bytes (then they cost it nothing more)."""
    return VersionFile.objects.filter(blob__sha256=sha256, version__model__organization=organization).exists()


def quota_left(organization: Any, *, exclude_session: UploadSession | None = None) -> int | None:
    """Bytes the organization may still add; None when unlimited."""
    quota = quota_for(organization)
    if quota is None:
        return None
    return max(0, quota - stored_bytes(organization) - reserved_bytes(organization, exclude_session=exclude_session))


def check_quota(
    organization: Any, *, size: int, sha256: str | None = None, exclude_session: UploadSession | None = None
) -> None:
    """Refuse (QuotaExceeded, 403 naming the quota) a file of ``size`` bytes the organization has no room for."""
    if sha256 and organization_references(organization, sha256):
        return
    left = quota_left(organization, exclude_session=exclude_session)
    if left is not None and size > left:
        quota = quota_for(organization)
        raise QuotaExceeded(
            f"This file ({filesizeformat(size)}) would exceed the storage quota of “{organization.slug}”: "
            f"{filesizeformat(left)} left of {filesizeformat(quota)}."
        )


def storage_usage(organization: Any) -> dict[str, int | None]:
    """What the organization stores, has reserved and may store (for the API and pages)."""
    quota = quota_for(organization)
    used = stored_bytes(organization)
    reserved = reserved_bytes(organization)
    return {
        "quota_bytes": quota,
        "used_bytes": used,
        "reserved_bytes": reserved,
        "available_bytes": None if quota is None else max(0, quota - used - reserved),
    }


def unreferenced_blobs(*, older_than: Any) -> Any:
    """Blobs no version file references, last uploaded before ``older_than``."""
    return Blob.objects.filter(referenced_at__lt=older_than).exclude(
        Exists(VersionFile.objects.filter(blob=OuterRef("pk")))
    )


__all__ = [
    "CHUNK_SIZE",
    "SpooledFile",
    "check_quota",
    "delete_blob_file",
    "hash_local_file",
    "local_blob_path",
    "open_blob",
    "quota_for",
    "spool_chunks",
    "spool_uploaded_file",
    "storage_usage",
    "store_spooled",
    "unreferenced_blobs",
]
