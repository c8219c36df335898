"""Catalog workflows: models, versions, files, publishing, yanking, aliases. Keyword-only; each one runs in a
transaction and records an audit event. Views, API, pages and tasks all call these.

User errors raise ``django.core.exceptions.ValidationError`` naming the field (a 400 in the API), or one of
``apps.marketplace.exceptions`` (413 quota, 409 offset, 410 gone).
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import record_event
from apps.core.access import Visibility
from apps.core.errors import field_error
from apps.marketplace import storage
from apps.marketplace.extensions import version_published
from apps.marketplace.models import (
    Alias,
    AliasChange,
    FileRole,
    Model,
    ModelVersion,
    ValidationStatus,
    VersionFile,
    VersionStatus,
    validate_alias_name,
    validate_model_name,
    validate_version_label,
)

MAX_TAGS = 32
MAX_TAG_LENGTH = 50
MAX_PATH_LENGTH = 500
MAX_PATH_PART_LENGTH = 255


def _check(field: str, validator: Any, value: Any) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise ValidationError({field: exc.error_list}) from exc


# --- values ----------------------------------------------------------------------------------------------------


def normalize_path(path: Any) -> str:
    """A version file's path: relative, ``/``-separated, NFC; refused when absolute, empty, with ``..``/``.``
    parts, empty parts, backslashes, NUL or other control characters."""
    if not isinstance(path, str) or not path.strip():
        raise field_error("path", "Give the file's path, e.g. “model.onnx”.", "required")
    path = unicodedata.normalize("NFC", path)
    if "\x00" in path:
        raise field_error("path", "The path contains a NUL character.", "invalid_path")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        raise field_error("path", "The path contains control characters.", "invalid_path")
    if "\\" in path:
        raise field_error("path", "Use “/” between folders: backslashes are not allowed in paths.", "invalid_path")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise field_error("path", f"“{path}” is absolute: give a path relative to the version.", "invalid_path")
    if len(path) > MAX_PATH_LENGTH:
        raise field_error("path", f"The path is longer than {MAX_PATH_LENGTH} characters.", "invalid_path")
    parts = path.split("/")
    if any(part == "" for part in parts):
        raise field_error("path", f"“{path}” has an empty part (a leading, trailing or double “/”).", "invalid_path")
    if any(part in (".", "..") for part in parts):
        raise field_error(
            "path", f"“{path}” may not contain “.” or “..” parts: files stay inside the version.", "invalid_path"
        )
    if any(len(part) > MAX_PATH_PART_LENGTH for part in parts):
        raise field_error(
            "path", f"A part of the path is longer than {MAX_PATH_PART_LENGTH} characters.", "invalid_path"
        )
    return path


def role_for_path(path: str) -> str:
    """What a file is, from its name: the ONNX model, external data, tokenizer, labels, the gpux.yml manifest."""
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(".onnx") or name.endswith(".ort"):
        return FileRole.MODEL
    if name.endswith((".onnx.data", ".onnx_data", ".data", ".weights", ".bin", ".pb")):
        return FileRole.EXTERNAL_DATA
    if name in ("gpux.yml", "gpux.yaml"):
        return FileRole.MANIFEST
    if name.startswith("tokenizer") or name in ("vocab.txt", "vocab.json", "merges.txt", "special_tokens_map.json"):
        return FileRole.TOKENIZER
    if name in ("labels.txt", "labels.json", "classes.txt", "synset.txt"):
        return FileRole.LABELS
    return FileRole.OTHER


def clean_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list | tuple) or not all(isinstance(tag, str) for tag in tags):
        raise field_error("tags", "Tags must be a list of strings.", "invalid")
    cleaned: list[str] = []
    for tag in tags:
        tag = tag.strip().lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH or any(ord(char) < 0x20 for char in tag):
            raise field_error(
                "tags", f"“{tag[:60]}” is not a tag: at most {MAX_TAG_LENGTH} printable characters.", "invalid"
            )
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise field_error("tags", f"At most {MAX_TAGS} tags.", "invalid")
    return cleaned


def _clean_visibility(visibility: Any) -> str:
    if visibility not in Visibility.values:
        raise field_error(
            "visibility",
            f"“{visibility}” is not a visibility; use one of {', '.join(Visibility.values)}.",
            "invalid_choice",
        )
    return visibility


# --- models ----------------------------------------------------------------------------------------------------

MODEL_TEXT_FIELDS = ("summary", "card", "task", "license", "source_registry", "external_id")


def create_model(
    *,
    organization: Any,
    actor: Any,
    name: str,
    summary: str = "",
    card: str = "",
    task: str = "",
    tags: list[str] | None = None,
    license: str = "",
    visibility: str = Visibility.PRIVATE,
    source_registry: str = "",
    external_id: str = "",
) -> Model:
    """Create a model in ``organization`` named ``name`` (unique there, soft-deleted models included)."""
    _check("name", validate_model_name, name)
    model = Model(
        organization=organization,
        name=name,
        summary=summary,
        card=card,
        task=task,
        tags=clean_tags(tags),
        license=license,
        visibility=_clean_visibility(visibility),
        source_registry=source_registry,
        external_id=external_id,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    with transaction.atomic():
        if Model.with_deleted.filter(organization=organization, name=name).exists():
            raise field_error("name", f"“{organization.slug}” already has a model named “{name}”.", "name_taken")
        model.full_clean(exclude=["organization", "created_by"], validate_unique=False)
        try:
            with transaction.atomic():
                model.save()
        except IntegrityError as exc:
            raise field_error(
                "name", f"“{organization.slug}” already has a model named “{name}”.", "name_taken"
            ) from exc
        record_event(
            action="model.created",
            organization=organization,
            actor=actor,
            target=model,
            metadata={"name": name, "visibility": model.visibility},
        )
    return model


def update_model(*, model: Model, actor: Any, **changes: Any) -> Model:
    """Change a model's name, summary, card, task, tags, license or visibility; records what changed."""
    allowed = {"name", "tags", "visibility", *MODEL_TEXT_FIELDS}
    unknown = set(changes) - allowed
    if unknown:
        raise field_error(sorted(unknown)[0], "This field cannot be changed.", "read_only")
    if "name" in changes:
        _check("name", validate_model_name, changes["name"])
    if "tags" in changes:
        changes["tags"] = clean_tags(changes["tags"])
    if "visibility" in changes:
        _clean_visibility(changes["visibility"])
    with transaction.atomic():
        locked = Model.objects.select_for_update().get(pk=model.pk)
        diff = {}
        for field, value in changes.items():
            before = getattr(locked, field)
            if before != value:
                diff[field] = [before, value] if field != "card" else ["…", "…"]
                setattr(locked, field, value)
        if not diff:
            return locked
        if (
            "name" in diff
            and Model.with_deleted.filter(organization_id=locked.organization_id, name=locked.name)
            .exclude(pk=locked.pk)
            .exists()
        ):
            raise field_error("name", f"This organization already has a model named “{locked.name}”.", "name_taken")
        locked.full_clean(exclude=["organization", "created_by"], validate_unique=False)
        locked.save()
        record_event(action="model.updated", organization=locked.organization_id, actor=actor, target=locked, diff=diff)
    return locked


def soft_delete_model(*, model: Model, actor: Any) -> Model:
    """Hide a model everywhere; the purge job removes it after ``MARKETPLACE_MODEL_RETENTION_DAYS``."""
    with transaction.atomic():
        locked = Model.with_deleted.select_for_update().get(pk=model.pk)
        if locked.deleted_at is not None:
            return locked
        now = timezone.now()
        locked.deleted_at = now
        locked.purge_after = now + timedelta(days=settings.MARKETPLACE_MODEL_RETENTION_DAYS)
        locked.save(update_fields=["deleted_at", "purge_after", "updated_at"])
        record_event(
            action="model.deleted",
            organization=locked.organization_id,
            actor=actor,
            target=locked,
            metadata={"purge_after": locked.purge_after},
        )
    return locked


def restore_model(*, model: Model, actor: Any) -> Model:
    """Bring back a soft-deleted model that was not purged yet."""
    with transaction.atomic():
        locked = Model.with_deleted.select_for_update().get(pk=model.pk)
        if locked.deleted_at is None:
            return locked
        locked.deleted_at = None
        locked.purge_after = None
        locked.save(update_fields=["deleted_at", "purge_after", "updated_at"])
        record_event(action="model.restored", organization=locked.organization_id, actor=actor, target=locked)
    return locked


# --- versions --------------------------------------------------------------------------------------------------


def create_version(*, model: Model, actor: Any, label: str, changelog: str = "") -> ModelVersion:
    """Start a draft version of ``model`` labelled ``label`` (unique per model, forever)."""
    _check("label", validate_version_label, label)
    version = ModelVersion(
        model=model,
        label=label,
        changelog=changelog,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    with transaction.atomic():
        if ModelVersion.objects.filter(model=model, label=label).exists():
            raise field_error("label", f"{model} already has a version “{label}”; choose another label.", "label_taken")
        try:
            with transaction.atomic():
                version.save()
        except IntegrityError as exc:
            raise field_error("label", f"{model} already has a version “{label}”.", "label_taken") from exc
        record_event(
            action="model.version.created",
            organization=model.organization_id,
            actor=actor,
            target=version,
            metadata={"model": str(model), "label": label},
        )
    return version


def _lock_version(version: ModelVersion) -> ModelVersion:
    return ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)


def _refuse_unless_draft(version: ModelVersion, doing: str) -> None:
    if version.status != VersionStatus.DRAFT:
        raise field_error(
            "status",
            f"Version “{version.label}” is {version.status}: a published version is immutable, so you cannot {doing}. "
            "Create a new version instead.",
            "version_immutable",
        )


def update_version(*, version: ModelVersion, actor: Any, changelog: str) -> ModelVersion:
    """Change a draft version's changelog."""
    with transaction.atomic():
        locked = _lock_version(version)
        _refuse_unless_draft(locked, "change its changelog")
        locked.changelog = changelog
        locked.full_clean(exclude=["model", "created_by", "validation_job"], validate_unique=False)
        locked.save(update_fields=["changelog", "updated_at"])
        record_event(
            action="model.version.updated", organization=locked.model.organization_id, actor=actor, target=locked
        )
    return locked


def request_validation(*, version: ModelVersion, actor: Any) -> Any:
    """Start the validation job of a draft version (once it has an ONNX model file); None when it cannot start."""
    if not version.files.filter(role=FileRole.MODEL).exists():
        return None
    try:
        from apps.marketplace.validation import start_validation
    except ImportError:  # the validation job is not installed: the version stays "not validated"
        return None
    return start_validation(version=version, actor=actor)


def check_model_file(local_path: Any) -> None:
    """Refuse an ONNX model file that cannot be one before it is stored (random bytes, a truncated file, a protobuf
    that is not a model, a terabyte tensor, external data escaping the version): 400 naming ``file``. The full
    validation (checker, ONNX Runtime) runs as a job once the file is stored."""
    try:
        from apps.marketplace.validation import check_uploaded_model
    except ImportError:  # the validation module is not installed: the job alone decides
        return
    check_uploaded_model(local_path=local_path)


def _files_changed(version: ModelVersion, actor: Any) -> None:
    # Any change of files makes an earlier validation outcome stale.
    ModelVersion.objects.filter(pk=version.pk).update(
        validation_status=ValidationStatus.NONE, validation_message="", validation_job=None, signature={}, onnx_info={}
    )
    version.refresh_from_db()
    request_validation(version=version, actor=actor)


def add_file(
    *,
    version: ModelVersion,
    actor: Any,
    path: str,
    uploaded: Any = None,
    spooled: storage.SpooledFile | None = None,
    role: str | None = None,
    declared_size: int | None = None,
    declared_sha256: str | None = None,
    exclude_session: Any = None,
    precheck: bool = True,
) -> VersionFile:
    """Add a file to a draft version, from an uploaded file (streamed to the spool while hashed) or a spool file
    (a finished upload session). The quota is checked before reading (``declared_size``, or the upload's size)
    and once the bytes are in; ``declared_sha256``, when given, must match; an ONNX model file must pass the
    upload-time checks (``check_model_file``; ``precheck=False`` leaves the whole decision to the validation job).
    A refused file leaves nothing behind (no blob, no spool file)."""
    try:
        path = normalize_path(path)
        if role is not None and role not in FileRole.values:
            raise field_error(
                "role", f"“{role}” is not a file role; use one of {', '.join(FileRole.values)}.", "invalid_choice"
            )
        organization = version.model.organization
        _refuse_unless_draft(version, "add files")
        if version.files.filter(path=path).exists():
            raise field_error(
                "path", f"Version “{version.label}” already has a file “{path}”; delete it first.", "path_taken"
            )
        if spooled is None:
            if uploaded is None:
                raise field_error("file", "Send the file.", "required")
            size = declared_size if declared_size is not None else getattr(uploaded, "size", None)
            if declared_sha256 and storage.organization_references(organization, declared_sha256):
                limit = None  # bytes it already stores cost nothing; the digest is verified below
            else:
                if size is not None:
                    storage.check_quota(organization, size=size)
                limit = storage.quota_left(organization)
            spooled = storage.spool_uploaded_file(uploaded, limit=limit)
        if declared_sha256 and declared_sha256 != spooled.sha256:
            raise field_error(
                "sha256",
                f"The file's SHA-256 is {spooled.sha256}, not the {declared_sha256} declared: nothing was stored.",
                "checksum_mismatch",
            )
        if precheck and (role or role_for_path(path)) == FileRole.MODEL:
            check_model_file(spooled.path)
        storage.check_quota(organization, size=spooled.size, sha256=spooled.sha256, exclude_session=exclude_session)
    except BaseException:
        if spooled is not None:
            spooled.discard()
        raise
    blob = storage.store_spooled(spooled)
    with transaction.atomic():
        locked = _lock_version(version)
        _refuse_unless_draft(locked, "add files")
        if locked.files.filter(path=path).exists():
            raise field_error("path", f"Version “{locked.label}” already has a file “{path}”.", "path_taken")
        version_file = VersionFile.objects.create(
            version=locked, path=path, blob=blob, role=role or role_for_path(path)
        )
        record_event(
            action="model.version.file_added",
            organization=locked.model.organization_id,
            actor=actor,
            target=locked,
            metadata={"path": path, "sha256": blob.sha256, "size": blob.size, "role": version_file.role},
        )
        _files_changed(locked, actor)
    return version_file


def remove_file(*, version: ModelVersion, actor: Any, path: str) -> None:
    """Remove a file from a draft version (its blob stays while anything references it)."""
    with transaction.atomic():
        locked = _lock_version(version)
        _refuse_unless_draft(locked, "remove files")
        version_file = locked.files.select_related("blob").filter(path=path).first()
        if version_file is None:
            raise field_error("path", f"Version “{locked.label}” has no file “{path}”.", "not_found")
        sha256 = version_file.blob.sha256
        version_file.delete()
        record_event(
            action="model.version.file_removed",
            organization=locked.model.organization_id,
            actor=actor,
            target=locked,
            metadata={"path": path, "sha256": sha256},
        )
        _files_changed(locked, actor)


def publish_version(*, version: ModelVersion, actor: Any) -> ModelVersion:
    """Publish a draft whose validation passed: its label and files are frozen from now on."""
    with transaction.atomic():
        locked = _lock_version(version)
        if locked.status != VersionStatus.DRAFT:
            raise field_error("status", f"Version “{locked.label}” is already {locked.status}.", "not_draft")
        if not locked.files.filter(role=FileRole.MODEL).exists():
            raise field_error(
                "files", "Upload the ONNX model file (e.g. “model.onnx”) before publishing.", "no_model_file"
            )
        if locked.validation_status != ValidationStatus.PASSED:
            reasons = {
                ValidationStatus.NONE: "it has not been validated",
                ValidationStatus.PENDING: "its validation is still running",
                ValidationStatus.FAILED: f"its validation failed: {locked.validation_message or 'see the version'}",
            }
            raise field_error(
                "validation_status",
                f"Version “{locked.label}” cannot be published: "
                f"{reasons.get(locked.validation_status, 'it has not been validated')}.",
                "validation_not_passed",
            )
        locked.status = VersionStatus.PUBLISHED
        locked.published_at = timezone.now()
        locked.save(update_fields=["status", "published_at", "updated_at"])
        record_event(
            action="model.version.published",
            organization=locked.model.organization_id,
            actor=actor,
            target=locked,
            metadata={"files": {f.path: f.blob.sha256 for f in locked.files.select_related("blob")}},
        )
        _after_publish(locked, actor)
    return locked


def _after_publish(version: ModelVersion, actor: Any) -> None:
    """Follow-ups of a publication in other apps (``version_published``): the inference app queues the version's
    performance card once this commits (``INFERENCE_PERFORMANCE_CARD_ON_PUBLISH``; never fails the publication)."""
    version_published.send(sender=ModelVersion, version=version, actor=actor)


def deprecate_version(*, version: ModelVersion, actor: Any, message: str = "") -> ModelVersion:
    """Mark a published version deprecated: still listed and downloadable, flagged to users."""
    with transaction.atomic():
        locked = _lock_version(version)
        if locked.status != VersionStatus.PUBLISHED:
            raise field_error(
                "status",
                f"Only a published version can be deprecated; “{locked.label}” is {locked.status}.",
                "invalid_status",
            )
        locked.status = VersionStatus.DEPRECATED
        locked.deprecated_at = timezone.now()
        locked.save(update_fields=["status", "deprecated_at", "updated_at"])
        record_event(
            action="model.version.deprecated",
            organization=locked.model.organization_id,
            actor=actor,
            target=locked,
            metadata={"message": message},
        )
    return locked


def yank_version(*, version: ModelVersion, actor: Any, reason: str) -> ModelVersion:
    """Yank a published or deprecated version: hidden from listings and refused to new users (410); those who
    pinned the exact label and downloaded it before still get it. The reason is shown to everyone."""
    reason = (reason or "").strip()
    if not reason:
        raise field_error(
            "reason", "Say why the version is yanked: users who ask for it will see the reason.", "required"
        )
    if len(reason) > 500:
        raise field_error("reason", "At most 500 characters.", "max_length")
    with transaction.atomic():
        locked = _lock_version(version)
        if locked.status not in (VersionStatus.PUBLISHED, VersionStatus.DEPRECATED):
            raise field_error(
                "status",
                f"Only a published version can be yanked; “{locked.label}” is {locked.status}.",
                "invalid_status",
            )
        locked.status = VersionStatus.YANKED
        locked.yanked_at = timezone.now()
        locked.yank_reason = reason
        locked.save(update_fields=["status", "yanked_at", "yank_reason", "updated_at"])
        record_event(
            action="model.version.yanked",
            organization=locked.model.organization_id,
            actor=actor,
            target=locked,
            metadata={"reason": reason},
        )
    return locked


# --- aliases ---------------------------------------------------------------------------------------------------


def set_alias(*, model: Model, actor: Any, name: str, version: ModelVersion) -> Alias:
    """Point alias ``name`` of ``model`` at ``version`` (published or deprecated), creating it if needed; every
    move is kept in ``AliasChange``."""
    _check("name", validate_alias_name, name)
    if version.model_id != model.pk:
        raise field_error("version", f"Version “{version.label}” is not a version of {model}.", "invalid")
    if version.status not in (VersionStatus.PUBLISHED, VersionStatus.DEPRECATED):
        raise field_error(
            "version",
            f"An alias points at a published version; “{version.label}” is {version.status}.",
            "invalid_status",
        )
    with transaction.atomic():
        Model.objects.select_for_update().filter(pk=model.pk).first()  # serialize alias moves per model
        alias = Alias.objects.filter(model=model, name=name).select_related("version").first()
        previous = alias.version if alias else None
        if previous is not None and previous.pk == version.pk:
            return alias
        now = timezone.now()
        if alias is None:
            alias = Alias.objects.create(model=model, name=name, version=version, created_at=now, updated_at=now)
        else:
            alias.version = version
            alias.updated_at = now
            alias.save(update_fields=["version", "updated_at"])
        AliasChange.objects.create(
            alias=alias,
            from_version=previous,
            to_version=version,
            from_label=previous.label if previous else "",
            to_label=version.label,
            actor=actor if getattr(actor, "is_authenticated", False) else None,
            created_at=now,
        )
        record_event(
            action="model.alias.set",
            organization=model.organization_id,
            actor=actor,
            target=model,
            metadata={"alias": name, "from": previous.label if previous else None, "to": version.label},
        )
    return alias
