"""Validating a model version: start the job, run it, record its outcome; gpux.yml import and export.

* ``start_validation(version=..., actor=...)`` writes a ``marketplace.validate_version`` job (queue ``checks``,
  beside performance cards: a worker of its own) and marks the draft ``pending``; the job's parameters name the
  version and the files it had.
* ``run_validation(job)`` (the job's body, ``apps.marketplace.tasks``) copies the version's files from storage
  into a temporary directory (each at its path, so external-data references resolve), runs the inspection in
  a limited child process (``apps.marketplace.onnx.validation``) and calls ``apply_report``.
* ``apply_report`` stores the outcome once: passed -> signature, ONNX facts, detected task; failed -> the
  messages in ``validation_message`` and the version stays a draft. A report for files that changed since,
  for a job that is no longer the version's, or for a version already decided is dropped, so a job that runs
  twice records one result. Records ``version.validated`` with the outcome.

See docs/user/onnx-validation.md and docs/user/gpux-yml.md.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.services import record_event
from apps.core.errors import field_error
from apps.core.job_services import start_job
from apps.core.jobs import Job, JobQueue
from apps.marketplace.models import FileRole, ModelVersion, ValidationStatus, VersionFile, VersionStatus
from apps.marketplace.onnx.inspection import failure_report
from apps.marketplace.onnx.limits import Limits
from apps.marketplace.onnx.manifest import ManifestError, compare_with_signature, export_manifest, parse_manifest
from apps.marketplace.onnx.task_detection import detect_task
from apps.marketplace.onnx.validation import precheck_model_file, validate_model

VALIDATE_JOB_KIND = "marketplace.validate_version"
MANIFEST_PATH = "gpux.yml"
COPY_CHUNK = 1024 * 1024


def validation_limits() -> Limits:
    """The limits of one validation, from the ``ONNX_VALIDATION_*`` and ``ONNX_MAX_*`` settings."""
    return Limits(
        memory_mb=int(getattr(settings, "ONNX_VALIDATION_MEMORY_MB", Limits.memory_mb)),
        timeout_s=float(getattr(settings, "ONNX_VALIDATION_TIMEOUT_S", Limits.timeout_s)),
        max_file_bytes=int(getattr(settings, "ONNX_MAX_FILE_BYTES", Limits.max_file_bytes)),
        max_tensor_bytes=int(getattr(settings, "ONNX_MAX_TENSOR_BYTES", Limits.max_tensor_bytes)),
        max_text_length=int(getattr(settings, "ONNX_MAX_TEXT_LENGTH", Limits.max_text_length)),
    )


def model_file_of(version: ModelVersion) -> VersionFile | None:
    """The version's ONNX model file: ``model.onnx`` when there is one, else the first file with the model role."""
    files = list(version.files.filter(role=FileRole.MODEL).order_by("path"))
    for version_file in files:
        if version_file.path == "model.onnx":
            return version_file
    return files[0] if files else None


def files_fingerprint(version: ModelVersion) -> list[list[str]]:
    """``[[path, sha256], ...]`` of the version's files: what a validation looked at."""
    return [[path, sha] for path, sha in version.files.order_by("path").values_list("path", "blob__sha256")]


def start_validation(*, version: ModelVersion, actor: Any) -> Job:
    """Start validating a draft version: a queued job, the version ``pending``; the job when it is sent.

    Refused (ValidationError naming the field) when the version is not a draft or has no ONNX model file.
    """
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model__organization").get(pk=version.pk)
        if locked.status != VersionStatus.DRAFT:
            raise ValidationError(
                {"status": [f"Version “{locked.label}” is {locked.status}: only drafts are validated."]},
                code="not_draft",
            )
        main = model_file_of(locked)
        if main is None:
            raise ValidationError(
                {"files": [f"Version “{locked.label}” has no ONNX model file (e.g. “model.onnx”) to validate."]},
                code="no_model_file",
            )
        job = start_job(
            kind=VALIDATE_JOB_KIND,
            organization=locked.model.organization,
            creator=actor,
            params={"version": str(locked.uuid), "main_file": main.path, "files": files_fingerprint(locked)},
            queue=JobQueue.CHECKS,
        )
        locked.validation_status = ValidationStatus.PENDING
        locked.validation_message = ""
        locked.validation_job = job
        locked.save(update_fields=["validation_status", "validation_message", "validation_job", "updated_at"])
    version.refresh_from_db()
    return job


def check_uploaded_model(*, local_path: str | Path) -> None:
    """Refuse an uploaded ONNX model file before it is stored, with the reasons, as ``ValidationError({"file":
    [...]}, code="invalid_onnx")`` (a 400): random bytes, a truncated file, a protobuf that is not a model,
    bad text, a declared tensor over the limit, external data pointing outside the version.

    Runs the upload-time checks in the limited child process; the full validation (checker, ONNX Runtime,
    external files present) still runs as the job once the file is stored.
    """
    report = precheck_model_file(local_path, validation_limits())
    if not report.get("ok"):
        messages = report.get("errors") or ["The file is not a usable ONNX model."]
        raise ValidationError({"file": [ValidationError(message, code="invalid_onnx") for message in messages]})


# --- running ------------------------------------------------------------------------------------------------------


def _work_dir() -> Path:
    """Where versions are copied to be checked: beside the upload spool (large, local disk), not /tmp."""
    path = Path(getattr(settings, "MARKETPLACE_UPLOAD_DIR", tempfile.gettempdir())) / "validation"
    path.mkdir(parents=True, exist_ok=True)
    return path


def materialize_files(version: ModelVersion, directory: Path) -> None:
    """Copy each file of the version from storage to ``directory/<path>``, streamed in chunks."""
    from apps.marketplace.storage import open_blob

    root = Path(directory).resolve()
    for version_file in version.files.select_related("blob").order_by("path"):
        target = (root / version_file.path).resolve()
        if root not in target.parents:  # paths are normalized on upload; never write outside the directory
            raise ValueError(f"The file path “{version_file.path}” leaves the version.")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            source = open_blob(version_file.blob)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"The stored bytes of “{version_file.path}” are missing from storage.") from exc
        with source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, COPY_CHUNK)


def run_validation(job: Job, progress: Any = None) -> dict[str, Any]:
    """The job's body: fetch the files, inspect them in the child process, record the outcome."""

    def report_progress(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    version = ModelVersion.objects.select_related("model").filter(uuid=job.params.get("version")).first()
    if version is None:
        return {"outcome": "skipped", "reason": "The version no longer exists."}
    if version.validation_job_id != job.pk or version.validation_status != ValidationStatus.PENDING:
        return {"outcome": "skipped", "reason": "The version is no longer waiting for this validation."}
    main_file = job.params.get("main_file") or getattr(model_file_of(version), "path", "")
    limits = validation_limits()
    report_progress(0.05, "Fetching the version's files")
    with tempfile.TemporaryDirectory(prefix="validate-", dir=_work_dir()) as directory:
        try:
            materialize_files(version, Path(directory))
        except (OSError, ValueError) as exc:
            report = failure_report(f"validation could not fetch the version's files: {exc}", check="files")
        else:
            report_progress(0.2, "Checking the model")
            report = validate_model(directory, main_file, limits)
    report_progress(0.95, "Recording the outcome")
    outcome = apply_report(version=version, report=report, job=job, fingerprint=job.params.get("files"))
    return {
        "outcome": outcome,
        "version": str(version.uuid),
        "errors": report.get("errors", []),
        "checks": report.get("checks", {}),
        "detected_task": report.get("detected_task"),
    }


def _onnx_info_from(report: dict[str, Any]) -> dict[str, Any]:
    info = dict(report.get("onnx_info") or {})
    info["checks"] = report.get("checks") or {}
    if report.get("warnings"):
        info["warnings"] = report["warnings"]
    if report.get("manifest"):
        info["manifest"] = report["manifest"]
    return info


def apply_report(
    *, version: ModelVersion, report: dict[str, Any], job: Job | None = None, fingerprint: Any = None
) -> str:
    """Record a validation report on the version, once: ``"passed"``, ``"failed"`` or ``"stale"`` (dropped:
    another validation took over, the files changed, or the version is decided or no longer a draft)."""
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model").filter(pk=version.pk).first()
        if locked is None or locked.status != VersionStatus.DRAFT:  # deleted, or published meanwhile
            return "stale"
        if job is not None and (
            locked.validation_job_id != job.pk or locked.validation_status != ValidationStatus.PENDING
        ):
            return "stale"
        if fingerprint is not None and files_fingerprint(locked) != [list(item) for item in fingerprint]:
            return "stale"
        errors = [str(message) for message in report.get("errors") or []]
        passed = bool(report.get("ok")) and not errors
        if passed:
            locked.signature = report.get("signature") or {}
            locked.onnx_info = _onnx_info_from(report)
            locked.detected_task = detect_task(locked.signature, tags=locked.model.tags) or ""
            locked.validation_status = ValidationStatus.PASSED
            locked.validation_message = ""
        else:
            locked.signature = {}
            locked.onnx_info = {"checks": report.get("checks") or {}}
            locked.detected_task = ""
            locked.validation_status = ValidationStatus.FAILED
            locked.validation_message = "\n".join(errors) or "validation failed without saying why."
        locked.save(
            update_fields=[
                "signature",
                "onnx_info",
                "detected_task",
                "validation_status",
                "validation_message",
                "updated_at",
            ]
        )
        outcome = "passed" if passed else "failed"
        record_event(
            action="version.validated",
            organization=locked.model.organization_id,
            actor=job.creator if job is not None else None,
            target=locked,
            metadata={
                "outcome": outcome,
                "errors": errors[:10],
                "checks": report.get("checks") or {},
                "detected_task": locked.detected_task,
                "job": str(job.uuid) if job is not None else None,
            },
        )
    version.refresh_from_db()
    return outcome


# --- gpux.yml ------------------------------------------------------------------------------------------------------


def import_manifest(*, version: ModelVersion, text: str | bytes, actor: Any) -> VersionFile:
    """Add a gpux.yml to a draft version after checking it (fields, and the model's signature when known).

    Refused with ``ValidationError({"manifest": [...]})`` naming each bad field by its path. Adding the file
    starts a new validation, which checks the manifest against the model again.
    """
    from django.core.files.base import ContentFile

    from apps.marketplace.services import add_file

    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    try:
        manifest = parse_manifest(data)
    except ManifestError as exc:
        raise field_error("manifest", exc.errors, "invalid_manifest") from exc
    main = model_file_of(version)
    if version.signature and main is not None:
        errors = compare_with_signature(manifest, version.signature, main_file=main.path)
        if errors:
            raise field_error("manifest", errors, "manifest_mismatch")
    return add_file(
        version=version,
        actor=actor,
        path=MANIFEST_PATH,
        uploaded=ContentFile(data, name=MANIFEST_PATH),
        role=FileRole.MANIFEST,
    )


def export_version_manifest(version: ModelVersion) -> str:
    """A gpux.yml that lets the GPUX CLI run the version: from its signature and files, keeping what an
    imported gpux.yml said about runtime, serving, preprocessing and labels."""
    main = model_file_of(version)
    if main is None:
        raise field_error("files", ["The version has no ONNX model file."], "no_model_file")
    if not version.signature:
        raise field_error(
            "signature", ["The version has no signature yet: its validation has not passed."], "not_validated"
        )
    model = version.model
    metadata = {"portal_model": f"{model.organization.slug}/{model.name}", "portal_version": version.label}
    if version.onnx_info.get("producer_name"):
        producer = f"{version.onnx_info['producer_name']} {version.onnx_info.get('producer_version') or ''}"
        metadata["producer"] = producer.strip()
    task = model.task or version.detected_task
    if task:
        metadata["task"] = task
    return export_manifest(
        name=model.name,
        version=version.label,
        main_file=main.path,
        signature=version.signature,
        description=model.summary,
        base=version.onnx_info.get("manifest") or None,
        tags=list(model.tags or []),
        metadata=metadata,
    )
