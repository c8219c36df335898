"""Resumable uploads: a session declares path, size and SHA-256; chunks are appended at the session's offset;
completing verifies size and digest and adds the file to the version.

The protocol (docs/api/models.md):

* ``POST .../versions/{label}/uploads/`` ``{path, size, sha256}`` → 201 with the session (its ``uuid``, ``offset``);
  the declared size is checked against the quota now and reserved while the session is open;
* ``PATCH /uploads/{uuid}/`` with ``Upload-Offset: <n>`` (or ``?offset=n``) and the bytes as the body → 204 with
  the new ``Upload-Offset``; another offset than the session's → 409 with the expected one;
* ``HEAD``/``GET /uploads/{uuid}/`` → the offset to resume from;
* ``POST /uploads/{uuid}/complete/`` → 201 with the file; a size or SHA-256 mismatch → 400, nothing stored;
* ``DELETE /uploads/{uuid}/`` aborts. Sessions expire after ``MARKETPLACE_UPLOAD_SESSION_TTL_HOURS``.

Bytes are streamed from the request to a spool file on local disk in 1 MiB pieces: memory stays flat whatever
the file's size.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.services import record_event
from apps.marketplace import services, storage
from apps.marketplace.exceptions import UploadGone, UploadOffsetMismatch
from apps.marketplace.models import (
    ModelVersion,
    UploadSession,
    UploadStatus,
    VersionFile,
    validate_sha256,
)

MAX_DECLARED_SIZE = 1024**5  # 1 PiB: anything above is a mistake, whatever the quota


def _invalid(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: [ValidationError(message, code=code)]})


def create_upload_session(*, version: ModelVersion, actor: Any, path: str, size: Any, sha256: Any) -> UploadSession:
    """Open a resumable upload of ``path`` (``size`` bytes, digest ``sha256``) into a draft version."""
    path = services.normalize_path(path)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size > MAX_DECLARED_SIZE:
        raise _invalid("size", "Give the file's size in bytes, a whole number from 0.", "invalid")
    sha256 = sha256.lower() if isinstance(sha256, str) else sha256
    try:
        validate_sha256(sha256)
    except ValidationError as exc:
        raise ValidationError({"sha256": exc.error_list}) from exc
    services._refuse_unless_draft(version, "upload files")
    if version.files.filter(path=path).exists():
        raise _invalid("path", f"Version “{version.label}” already has a file “{path}”; delete it first.", "path_taken")
    organization = version.model.organization
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(pk=version.pk).first()
        storage.check_quota(organization, size=size, sha256=sha256)
        now = timezone.now()
        session = UploadSession.objects.create(
            version=version,
            path=path,
            size=size,
            sha256=sha256,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(hours=settings.MARKETPLACE_UPLOAD_SESSION_TTL_HOURS),
        )
        session.spool_path.parent.mkdir(parents=True, exist_ok=True)
        session.spool_path.touch()
        record_event(
            action="model.upload.started",
            organization=organization,
            actor=actor,
            target=version,
            metadata={"upload": session.uuid, "path": path, "size": size, "sha256": sha256},
        )
    return session


def _refuse_unless_open(session: UploadSession) -> None:
    if session.status == UploadStatus.OPEN and session.expires_at <= timezone.now():
        expire_session(session)
    if session.status != UploadStatus.OPEN:
        raise UploadGone(f"This upload session is {session.status}; start a new one.")


def parse_offset(value: Any) -> int:
    try:
        offset = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise _invalid(
            "offset", "Send the chunk's offset (the Upload-Offset header), a whole number.", "invalid"
        ) from exc
    if offset < 0:
        raise _invalid("offset", "The offset cannot be negative.", "invalid")
    return offset


def write_chunk(*, session: UploadSession, offset: int, stream: IO[bytes], length: int | None) -> UploadSession:
    """Append ``length`` bytes read from ``stream`` at ``offset``, which must be the session's current offset.

    One writer at a time per session (a file lock); what arrived before a broken connection is kept, so the
    client resumes from the offset a HEAD reports.
    """
    session.refresh_from_db()
    _refuse_unless_open(session)
    if length is None:
        raise _invalid("Content-Length", "Send the chunk with a Content-Length header.", "required")
    if offset + length > session.size:
        raise _invalid(
            "Content-Length",
            f"This chunk ends at byte {offset + length}, past the declared size of {session.size} bytes.",
            "too_large",
        )
    spool = session.spool_path
    spool.parent.mkdir(parents=True, exist_ok=True)
    with open(spool, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UploadOffsetMismatch(expected=session.offset, given=offset) from exc
        session.refresh_from_db()
        _refuse_unless_open(session)
        if offset != session.offset:
            raise UploadOffsetMismatch(expected=session.offset, given=offset)
        handle.truncate(offset)  # drop bytes of a chunk that broke off before it was counted
        handle.seek(offset)
        written = 0
        try:
            while written < length:
                piece = stream.read(min(storage.CHUNK_SIZE, length - written))
                if not piece:
                    break
                handle.write(piece)
                written += len(piece)
        finally:
            handle.flush()
            os.fsync(handle.fileno())
            UploadSession.objects.filter(pk=session.pk, offset=offset, status=UploadStatus.OPEN).update(
                offset=offset + written, updated_at=timezone.now()
            )
    session.refresh_from_db()
    return session


def complete_upload_session(*, session: UploadSession, actor: Any) -> VersionFile:
    """Verify size and SHA-256 of what arrived and add it to the version; a mismatch stores nothing (400)."""
    session.refresh_from_db()
    _refuse_unless_open(session)
    if session.offset != session.size:
        raise _invalid(
            "size",
            f"Received {session.offset} of the {session.size} bytes declared; send the rest first.",
            "incomplete",
        )
    spool = session.spool_path
    sha256, size = storage.hash_local_file(spool)
    if size != session.size:
        _close(session, UploadStatus.ABORTED, actor=actor, reason="size mismatch")
        raise _invalid("size", f"The upload has {size} bytes, not the {session.size} declared.", "size_mismatch")
    if sha256 != session.sha256:
        _close(session, UploadStatus.ABORTED, actor=actor, reason="sha256 mismatch")
        raise _invalid(
            "sha256",
            f"The bytes received have SHA-256 {sha256}, not the {session.sha256} declared: nothing was stored. "
            "Start a new upload.",
            "checksum_mismatch",
        )
    try:
        version_file = services.add_file(
            version=session.version,
            actor=actor,
            path=session.path,
            spooled=storage.SpooledFile(path=spool, size=size, sha256=sha256),
            exclude_session=session,
        )
    except BaseException:
        # add_file dropped the spool file; the session cannot be resumed.
        _close(session, UploadStatus.ABORTED, actor=actor, reason="refused on completion")
        raise
    UploadSession.objects.filter(pk=session.pk).update(
        status=UploadStatus.COMPLETED, file=version_file, updated_at=timezone.now()
    )
    session.refresh_from_db()
    return version_file


def abort_upload_session(*, session: UploadSession, actor: Any) -> None:
    """Abort an open upload: its bytes are dropped and its quota reservation released."""
    session.refresh_from_db()
    if session.status != UploadStatus.OPEN:
        raise UploadGone(f"This upload session is already {session.status}.")
    _close(session, UploadStatus.ABORTED, actor=actor, reason="aborted")


def _close(session: UploadSession, status: str, *, actor: Any, reason: str) -> None:
    with transaction.atomic():
        UploadSession.objects.filter(pk=session.pk).update(status=status, updated_at=timezone.now())
        record_event(
            action="model.upload.aborted" if status == UploadStatus.ABORTED else "model.upload.expired",
            organization=session.version.model.organization_id,
            actor=actor,
            target=session.version,
            metadata={"upload": session.uuid, "path": session.path, "reason": reason},
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(session.spool_path)
    session.status = status


def expire_session(session: UploadSession) -> None:
    _close(session, UploadStatus.EXPIRED, actor=None, reason="expired")


def expire_upload_sessions(*, now: Any = None) -> int:
    """Close every open session past its expiry; returns how many."""
    now = now or timezone.now()
    expired = list(
        UploadSession.objects.filter(status=UploadStatus.OPEN, expires_at__lte=now).select_related("version__model")
    )
    for session in expired:
        expire_session(session)
    return len(expired)
