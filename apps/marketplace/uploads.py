"""Resumable uploads: a session declares path, size and SHA-256; chunks are appended at the session's offset;
completing verifies size and digest and adds the file to the version.

The protocol (docs/api/models.md):

* ``POST .../versions/{label}/uploads/`` ``{path, size, sha256}`` → 201 with the session (its ``uuid``, ``offset``);
  the declared size is checked against the quota now and reserved while the session is open;
* ``PATCH /uploads/{uuid}/`` with ``Upload-Offset: <n>`` (or ``?offset=n``) and the bytes as the body → 204 with
  the new ``Upload-Offset``; another offset than the session's → 409 with the expected one;
* ``HEAD``/``GET /uploads/{uuid}/`` → the offset to resume from;
* ``POST /uploads/{uuid}/complete/`` → 201 with the file; a size or SHA-256 mismatch → 400, nothing stored.
  Above ``MARKETPLACE_SYNC_COMPLETE_MAX_BYTES`` the bytes are verified in a job instead (re-reading several GB
  would outlast the web worker's timeout): 202 with the job, the session ``verifying`` until the job adds the
  file (``completed``) or refuses it (``failed``, with the reason); both paths run ``finish_upload_session``;
* ``DELETE /uploads/{uuid}/`` aborts. Sessions expire after ``MARKETPLACE_UPLOAD_SESSION_TTL_HOURS``.

Bytes are streamed from the request to a spool file on local disk in 1 MiB pieces: memory stays flat whatever
the file's size.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable
from datetime import timedelta
from typing import IO, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework import exceptions, status

from apps.audit.services import record_event
from apps.core.errors import field_error
from apps.core.job_services import HARD_LIMIT_MARGIN, JobClaimLost, reaper_grace
from apps.core.jobs import DEFAULT_TIME_LIMIT, Job, JobStatus
from apps.marketplace import services, storage
from apps.marketplace.exceptions import UploadGone, UploadOffsetMismatch
from apps.marketplace.models import (
    LIVE_UPLOAD_STATUSES,
    ModelVersion,
    UploadSession,
    UploadStatus,
    VersionFile,
    validate_sha256,
)

MAX_DECLARED_SIZE = 1024**5  # 1 PiB: anything above is a mistake, whatever the quota
COMPLETE_JOB_KIND = "marketplace.complete_upload"
# The slowest read rate a completion job's time limit allows for (hashing, then a copy to the storage).
VERIFY_MIN_BYTES_PER_SECOND = 20 * 1024 * 1024


def create_upload_session(*, version: ModelVersion, actor: Any, path: str, size: Any, sha256: Any) -> UploadSession:
    """Open a resumable upload of ``path`` (``size`` bytes, digest ``sha256``) into a draft version."""
    path = services.normalize_path(path)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size > MAX_DECLARED_SIZE:
        raise field_error("size", "Give the file's size in bytes, a whole number from 0.", "invalid")
    sha256 = sha256.lower() if isinstance(sha256, str) else sha256
    try:
        validate_sha256(sha256)
    except ValidationError as exc:
        raise ValidationError({"sha256": exc.error_list}) from exc
    services._refuse_unless_draft(version, "upload files")
    if version.files.filter(path=path).exists():
        raise field_error(
            "path", f"Version “{version.label}” already has a file “{path}”; delete it first.", "path_taken"
        )
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


def _refuse_unless_open(session: UploadSession, *, in_job: bool = False) -> None:
    # ``in_job``: the completion job itself, which goes on with a session it made ``verifying``.
    if session.status in LIVE_UPLOAD_STATUSES and session.expires_at <= timezone.now():
        expire_session(session)
    if not in_job:
        reopen_if_job_ended(session=session)
        if session.status == UploadStatus.VERIFYING:
            raise UploadVerifying()
    if session.status not in LIVE_UPLOAD_STATUSES:
        raise UploadGone(f"This upload session is {session.status}; start a new one.")


def parse_offset(value: Any) -> int:
    try:
        offset = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise field_error(
            "offset", "Send the chunk's offset (the Upload-Offset header), a whole number.", "invalid"
        ) from exc
    if offset < 0:
        raise field_error("offset", "The offset cannot be negative.", "invalid")
    return offset


def write_chunk(*, session: UploadSession, offset: int, stream: IO[bytes], length: int | None) -> UploadSession:
    """Append ``length`` bytes read from ``stream`` at ``offset``, which must be the session's current offset.

    One writer at a time per session (a file lock); what arrived before a broken connection is kept, so the
    client resumes from the offset a HEAD reports.
    """
    session.refresh_from_db()
    _refuse_unless_open(session)
    if length is None:
        raise field_error("Content-Length", "Send the chunk with a Content-Length header.", "required")
    if offset + length > session.size:
        raise field_error(
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


class UploadVerifying(exceptions.APIException):
    """The session's bytes are being verified by a job: it takes no chunk and cannot be aborted now (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "upload_verifying"
    default_detail = "This upload is being verified; wait for its job to finish."


class UploadVerificationFailed(Exception):
    """Completing in a job failed for a reason the uploader must see (the job's error, the session's ``error``)."""


_FAILED_PREFIX = f"{UploadVerificationFailed.__name__}: "
_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def reopen_if_job_ended(*, session: UploadSession) -> None:
    """Repair a ``verifying`` session whose job ended without settling it (a lost worker after its retries, a
    cancelled job): ``open`` again, with the job's error, so it takes chunks and ``complete`` again. Nothing is
    read unless the session is ``verifying``."""
    if session.status != UploadStatus.VERIFYING:
        return
    job = session.job
    if job is not None and job.status in _ACTIVE:
        return
    error = job.error.removeprefix(_FAILED_PREFIX) if job is not None else ""
    error = error or "The verification job ended without a result; complete the upload again to retry."
    reopened = UploadSession.objects.filter(pk=session.pk, status=UploadStatus.VERIFYING, job=session.job_id).update(
        status=UploadStatus.OPEN, error=error, updated_at=timezone.now()
    )
    if reopened:
        session.status, session.error = UploadStatus.OPEN, error
    else:
        session.refresh_from_db()


def _completion_time_limit(size: int) -> int:
    # Hashing, then (S3) copying: sized for a slow disk, never under the default job limit.
    return int(DEFAULT_TIME_LIMIT + size / VERIFY_MIN_BYTES_PER_SECOND)


def _keep_open_for(session: UploadSession, seconds: int) -> None:
    # A session being verified must not expire under its job (expiry drops the spool file).
    until = timezone.now() + timedelta(seconds=seconds + HARD_LIMIT_MARGIN + reaper_grace())
    UploadSession.objects.filter(pk=session.pk, expires_at__lt=until).update(expires_at=until)


def _refuse_unless_complete(session: UploadSession) -> None:
    if session.offset != session.size:
        raise field_error(
            "size",
            f"Received {session.offset} of the {session.size} bytes declared; send the rest first.",
            "incomplete",
        )


def complete_upload_session(*, session: UploadSession, actor: Any) -> VersionFile | Job:
    """Finish an upload whose bytes have all arrived: in the request up to ``MARKETPLACE_SYNC_COMPLETE_MAX_BYTES``
    (the version file; a mismatch is a 400, stores nothing and fails the session), above it in a
    ``marketplace.complete_upload`` job (the job; the session is ``verifying`` until it ends). Completing again
    while the job runs answers the same job."""
    session.refresh_from_db()
    reopen_if_job_ended(session=session)
    if session.status == UploadStatus.VERIFYING:
        return session.job
    if session.size <= settings.MARKETPLACE_SYNC_COMPLETE_MAX_BYTES:
        return finish_upload_session(session=session, actor=actor)
    return start_completion_job(session=session, actor=actor)


def start_completion_job(*, session: UploadSession, actor: Any) -> Job:
    """Start (once) the job that verifies and adds the session's file, and mark the session ``verifying`` with
    it; the checks that need no reading of the bytes (open, every byte received) answer at once."""
    from apps.core.job_services import start_job

    with transaction.atomic():
        locked = UploadSession.objects.select_for_update().select_related("version__model__organization")
        session = locked.get(pk=session.pk)
        reopen_if_job_ended(session=session)
        if session.status == UploadStatus.VERIFYING:
            return session.job
        _refuse_unless_open(session)
        _refuse_unless_complete(session)
        time_limit = _completion_time_limit(session.size)
        _keep_open_for(session, time_limit)
        job = start_job(
            kind=COMPLETE_JOB_KIND,
            organization=session.version.model.organization,
            creator=actor,
            params={"session": str(session.uuid), "path": session.path, "size": session.size},
            time_limit=time_limit,
        )
        UploadSession.objects.filter(pk=session.pk).update(
            status=UploadStatus.VERIFYING, job=job, error="", updated_at=timezone.now()
        )
    return job


def run_completion_job(job: Job, progress: Callable[[float, str], None]) -> dict[str, Any]:
    """The body of the ``marketplace.complete_upload`` job: re-check that its creator may still change the model,
    then ``finish_upload_session`` with progress. A refusal (permission, size, SHA-256, quota, path) fails the
    session (``failed`` with the reason as its ``error``; nothing stored, spool file removed) and the job, with
    the same reason. Any other failure (the time limit) leaves the session ``open`` with the error, to retry."""
    session = UploadSession.objects.select_related("version__model__organization").filter(job=job).first()
    if session is None:
        raise UploadVerificationFailed("This upload session is gone or is being verified by another job.")
    actor = job.creator
    if session.status in LIVE_UPLOAD_STATUSES:
        UploadSession.objects.filter(pk=session.pk, status__in=LIVE_UPLOAD_STATUSES).update(
            status=UploadStatus.VERIFYING, updated_at=timezone.now()
        )
        session.status = UploadStatus.VERIFYING
        _keep_open_for(session, job.time_limit)
        versions = ModelVersion.objects.filter(pk=session.version_id)
        allowed = actor is not None and versions.restrict(actor, "change").exists()
        if not allowed:
            error = (
                f"{getattr(actor, 'handle', 'The uploader')} may no longer change {session.version.model.full_name}: "
                "nothing was stored."
            )
            _close(
                session, UploadStatus.FAILED, actor=actor, reason="no longer allowed to change the model", error=error
            )
            raise UploadVerificationFailed(error)

    def report(fraction: float) -> None:
        progress(0.95 * fraction, f"Verifying {int(fraction * 100)}%")

    try:
        version_file = finish_upload_session(session=session, actor=actor, progress=report, in_job=True)
    except ValidationError as exc:
        raise UploadVerificationFailed(" ".join(exc.messages)) from exc
    except exceptions.APIException as exc:  # the quota (403), the session gone (410)
        raise UploadVerificationFailed(str(exc.detail)) from exc
    except JobClaimLost:
        raise  # another attempt has the job (and the session) now
    except Exception as exc:
        # Not a refusal (the time limit, a lost disk): the bytes may still be good; completing again retries.
        error = (
            f"Verifying ran past its time limit of {job.time_limit} s and was stopped; complete the upload again."
            if isinstance(exc, SoftTimeLimitExceeded)
            else f"Verifying failed ({type(exc).__name__}: {exc}); complete the upload again."
        )
        UploadSession.objects.filter(pk=session.pk, status=UploadStatus.VERIFYING).update(
            status=UploadStatus.OPEN, error=error, updated_at=timezone.now()
        )
        raise
    progress(1.0, "Verified")
    blob = version_file.blob
    return {
        "session": str(session.uuid),
        "version": session.version.label,
        "path": version_file.path,
        "size": blob.size,
        "sha256": blob.sha256,
    }


def _hash_spool(path: Any, size: int, progress: Callable[[float], None] | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    read = 0
    with open(path, "rb") as handle:
        for chunk in storage.iter_file_chunks(handle):
            digest.update(chunk)
            read += len(chunk)
            if progress is not None:
                progress(min(1.0, read / size) if size else 1.0)
    return digest.hexdigest(), read


def _already_added(session: UploadSession) -> VersionFile | None:
    # An attempt that stored the file and died before marking the session (a job run again): keep that file.
    return VersionFile.objects.filter(version=session.version, path=session.path, blob__sha256=session.sha256).first()


def _mark_completed(session: UploadSession, version_file: VersionFile) -> None:
    UploadSession.objects.filter(pk=session.pk).update(
        status=UploadStatus.COMPLETED, file=version_file, error="", updated_at=timezone.now()
    )
    session.refresh_from_db()


def finish_upload_session(
    *,
    session: UploadSession,
    actor: Any,
    progress: Callable[[float], None] | None = None,
    in_job: bool = False,
) -> VersionFile:
    """Verify size and SHA-256 of what arrived and add it to the version (the request and the job both call this;
    the job passes ``in_job`` as it goes on with the session it made ``verifying``).

    A refusal fails the session (``failed``, with the reason as its ``error``), removes the spool file and stores
    nothing (a 400 in the request). Calling it again for a session it completed returns the same file: a job that
    runs twice records one file. ``progress(fraction)`` is called while the bytes are read.
    """
    session.refresh_from_db()
    if session.status == UploadStatus.COMPLETED and session.file_id is not None:
        return session.file
    _refuse_unless_open(session, in_job=in_job)
    _refuse_unless_complete(session)
    spool = session.spool_path
    if not spool.exists():
        if (earlier := _already_added(session)) is not None:
            _mark_completed(session, earlier)
            return earlier
        error = "The bytes received are no longer on the server; start a new upload."
        _close(session, UploadStatus.FAILED, actor=actor, reason="bytes lost", error=error)
        raise field_error("file", error, "upload_lost")
    sha256, size = _hash_spool(spool, session.size, progress)
    if size != session.size:
        error = f"The upload has {size} bytes, not the {session.size} declared."
        _close(session, UploadStatus.FAILED, actor=actor, reason="size mismatch", error=error)
        raise field_error("size", error, "size_mismatch")
    if sha256 != session.sha256:
        error = (
            f"The bytes received have SHA-256 {sha256}, not the {session.sha256} declared: nothing was stored. "
            "Start a new upload."
        )
        _close(session, UploadStatus.FAILED, actor=actor, reason="sha256 mismatch", error=error)
        raise field_error("sha256", error, "checksum_mismatch")
    try:
        version_file = services.add_file(
            version=session.version,
            actor=actor,
            path=session.path,
            spooled=storage.SpooledFile(path=spool, size=size, sha256=sha256),
            exclude_session=session,
        )
    except BaseException as exc:
        # add_file dropped the spool file; the session cannot be resumed.
        _close(session, UploadStatus.FAILED, actor=actor, reason="refused on completion", error=_reason(exc))
        raise
    _mark_completed(session, version_file)
    return version_file


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    if isinstance(exc, exceptions.APIException):
        return str(exc.detail)
    return f"The file could not be added ({type(exc).__name__}); start a new upload."


def abort_upload_session(*, session: UploadSession, actor: Any) -> None:
    """Abort an open upload (``aborted``): its bytes are dropped and its quota reservation released. A session
    being verified by a running job cannot be aborted (409)."""
    session.refresh_from_db()
    reopen_if_job_ended(session=session)
    if session.status == UploadStatus.VERIFYING:
        raise UploadVerifying("This upload is being verified and cannot be aborted; wait for its job to finish.")
    if session.status != UploadStatus.OPEN:
        raise UploadGone(f"This upload session is already {session.status}.")
    _close(session, UploadStatus.ABORTED, actor=actor, reason="aborted")


_CLOSE_ACTIONS = {
    UploadStatus.ABORTED: "model.upload.aborted",
    UploadStatus.FAILED: "model.upload.failed",
    UploadStatus.EXPIRED: "model.upload.expired",
}


def _close(session: UploadSession, status: str, *, actor: Any, reason: str, error: str | None = None) -> None:
    # ``error`` (a failed session's reason, shown by the API) replaces the session's; None keeps it.
    fields: dict[str, Any] = {"status": status, "updated_at": timezone.now()}
    if error is not None:
        fields["error"] = error
    with transaction.atomic():
        UploadSession.objects.filter(pk=session.pk).update(**fields)
        record_event(
            action=_CLOSE_ACTIONS[status],
            organization=session.version.model.organization_id,
            actor=actor,
            target=session.version,
            metadata={"upload": session.uuid, "path": session.path, "reason": reason},
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(session.spool_path)
    session.status = status
    if error is not None:
        session.error = error


def expire_session(session: UploadSession) -> None:
    _close(session, UploadStatus.EXPIRED, actor=None, reason="expired")


def expire_upload_sessions(*, now: Any = None) -> int:
    """Close every open or verifying session past its expiry; returns how many. (A verifying session's expiry is
    pushed past its job's time limit, so one past it has no job left working on it.)"""
    now = now or timezone.now()
    expired = list(
        UploadSession.objects.filter(status__in=LIVE_UPLOAD_STATUSES, expires_at__lte=now).select_related(
            "version__model"
        )
    )
    for session in expired:
        expire_session(session)
    return len(expired)
