"""Registry workflows: configure a registry, test its connection, start and run syncs, the scheduler's tick.

Every function that a person's request reaches raises ``ValidationError`` naming the field (``config.<name>``
for a backend parameter) and writes nothing when refused.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import record_event
from apps.core import metrics
from apps.core.access import Visibility
from apps.core.errors import field_error
from apps.core.job_services import start_job
from apps.core.jobs import JobQueue, JobStatus
from apps.core.validators import SLUG_VALIDATOR
from apps.marketplace.models import Model
from apps.registries.crypto import CredentialsUnreadable, decrypt_credentials, encrypt_credentials
from apps.registries.models import Registry, RegistryMode, RegistrySync, SyncTrigger
from apps.registries.sdk import ConfigurationError, RegistryBackend, RegistryError, available_backends
from apps.registries.sdk.discovery import backend_class
from apps.registries.sync import SyncRun, SyncStopped, backend_for, describe_error, portal_context

logger = logging.getLogger(__name__)

SYNC_KIND = "registries.sync"
MIN_INTERVAL_MINUTES = 5
MAX_INTERVAL_MINUTES = 60 * 24 * 30
MAX_PATTERNS = 100
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
START_CHUNK = 50  # registries per scheduled-start task


# --- values -------------------------------------------------------------------------------------------------------
def _string_list(field: str, value: Any, *, limit: int = MAX_PATTERNS, length: int = 200) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", "\n").splitlines()
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise field_error(field, "Give a list of text values.", "invalid")
    items = [item.strip() for item in value if item.strip()]
    if len(items) > limit:
        raise field_error(field, f"At most {limit} entries.", "invalid")
    for item in items:
        if len(item) > length or not item.isprintable():
            raise field_error(field, f"“{item[:60]}” is not allowed: at most {length} printable characters.", "invalid")
    return list(dict.fromkeys(items))


def _backend(name: Any) -> type[RegistryBackend]:
    if not isinstance(name, str) or not name:
        raise field_error("backend", "Choose a backend.", "required")
    cls = backend_class(name)
    if cls is None:
        choices = ", ".join(available_backends()) or "none are installed"
        raise field_error(
            "backend", f"“{name[:60]}” is not an installed backend; choose one of: {choices}.", "invalid_choice"
        )
    return cls


def _interval(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise field_error("sync_interval_minutes", "Give a whole number of minutes (0: manual syncs only).", "invalid")
    try:
        minutes = int(value)
    except ValueError:
        raise field_error(
            "sync_interval_minutes", "Give a whole number of minutes (0: manual syncs only).", "invalid"
        ) from None
    if minutes and not MIN_INTERVAL_MINUTES <= minutes <= MAX_INTERVAL_MINUTES:
        raise field_error(
            "sync_interval_minutes",
            f"Sync at most every {MIN_INTERVAL_MINUTES} minutes and at least every {MAX_INTERVAL_MINUTES // 1440} "
            "days, or 0 for manual syncs only.",
            "invalid",
        )
    return minutes


def _choice(field: str, value: Any, choices: Any) -> str:
    if value not in choices.values:
        raise field_error(field, f"Choose one of: {', '.join(choices.values)}.", "invalid_choice")
    return value


def clean_backend_config(
    cls: type[RegistryBackend], config: Any, *, stored: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config, credentials)``: the backend's parameters validated, the sensitive ones split off.

    ``stored`` (on an update) is the registry's current configuration with decrypted credentials: a sensitive
    parameter left out keeps its stored value; ``""`` or ``null`` clears it.
    """
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise field_error("config", "The configuration is an object of parameter names and values.", "invalid")
    sensitive = set(cls.sensitive_parameters())
    merged = dict(stored or {})
    for name, value in config.items():
        merged[name] = value
    for name in list(merged):
        if name in cls.presets:
            merged.pop(name)
    try:
        cleaned = cls.clean_config(merged, context=portal_context())
    except ConfigurationError as exc:
        raise field_error(f"config.{exc.field}", exc.message, "invalid") from None
    except RegistryError as exc:
        raise field_error("config", exc.message, "invalid") from None
    except Exception as exc:  # a plugin's validation is plugin code
        raise field_error("config", f"The backend could not check this configuration: {exc}", "invalid") from None
    for name in cls.presets:
        cleaned.pop(name, None)
    public = {name: value for name, value in cleaned.items() if name not in sensitive}
    secret = {name: value for name, value in cleaned.items() if name in sensitive and value not in (None, "")}
    return public, secret


def _clean_fields(data: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if "slug" in data:
        slug = data["slug"]
        if not isinstance(slug, str):
            raise field_error("slug", "Give the registry's slug.", "required")
        try:
            SLUG_VALIDATOR(slug)
        except ValidationError as exc:
            raise field_error("slug", exc.messages[0], "invalid_slug") from None
        cleaned["slug"] = slug
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not name.strip():
            raise field_error("name", "Give the registry a name.", "required")
        if len(name) > 100:
            raise field_error("name", "At most 100 characters.", "invalid")
        cleaned["name"] = name.strip()
    if "description" in data:
        if not isinstance(data["description"], str) or len(data["description"]) > 500:
            raise field_error("description", "At most 500 characters of text.", "invalid")
        cleaned["description"] = data["description"]
    if "mode" in data:
        cleaned["mode"] = _choice("mode", data["mode"], RegistryMode)
    if "model_visibility" in data:
        cleaned["model_visibility"] = _choice("model_visibility", data["model_visibility"], Visibility)
    for field in ("include_patterns", "exclude_patterns"):
        if field in data:
            cleaned[field] = _string_list(field, data[field])
    if "tags" in data:
        cleaned["tags"] = [tag.lower() for tag in _string_list("tags", data["tags"], length=50)]
    if "licenses" in data:
        cleaned["licenses"] = [value.lower() for value in _string_list("licenses", data["licenses"], length=100)]
    if "sync_interval_minutes" in data:
        cleaned["sync_interval_minutes"] = _interval(data["sync_interval_minutes"])
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise field_error("enabled", "Give true or false.", "invalid")
        cleaned["enabled"] = data["enabled"]
    return cleaned


def _next_sync(registry: Registry, now: datetime.datetime | None = None) -> datetime.datetime | None:
    if not registry.enabled or not registry.sync_interval_minutes:
        return None
    return (now or timezone.now()) + datetime.timedelta(minutes=registry.sync_interval_minutes)


# --- configuring --------------------------------------------------------------------------------------------------
def create_registry(*, organization: Any, actor: Any, backend: Any, config: Any = None, **fields: Any) -> Registry:
    """A new registry of ``organization``; one audit event. Nothing is synced until a sync is started."""
    cls = _backend(backend)
    for required in ("slug", "name"):
        if not fields.get(required):
            raise field_error(required, f"Give the registry's {required}.", "required")
    cleaned = _clean_fields(fields)
    public, secret = clean_backend_config(cls, config)
    registry = Registry(
        organization=organization,
        backend=backend,
        config=public,
        credentials=encrypt_credentials(secret),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        **cleaned,
    )
    registry.next_sync_at = _next_sync(registry)
    try:
        with transaction.atomic():
            registry.save()
            record_event(
                action="registry.created",
                organization=organization,
                actor=actor,
                target=registry,
                metadata={"backend": backend, "slug": registry.slug, "mode": registry.mode},
            )
    except IntegrityError:
        raise field_error(
            "slug", f"“{registry.slug}” is taken by another registry of this organization.", "unique"
        ) from None
    return registry


def stored_config(registry: Registry) -> dict[str, Any]:
    try:
        credentials = decrypt_credentials(registry.credentials)
    except CredentialsUnreadable:
        credentials = {}
    return {**registry.config, **credentials}


def update_registry(*, registry: Registry, actor: Any, config: Any = None, **fields: Any) -> Registry:
    """Change a registry; sensitive parameters left out keep their value. One audit event (no secrets in it)."""
    cleaned = _clean_fields(fields)
    changed = sorted(name for name, value in cleaned.items() if getattr(registry, name) != value)
    if config is not None:
        try:
            stored_secret = decrypt_credentials(registry.credentials)
        except CredentialsUnreadable:
            stored_secret = {}
        public, secret = clean_backend_config(_backend(registry.backend), config, stored=stored_config(registry))
        if public != registry.config:
            changed.append("config")
        if secret != stored_secret:
            changed.append("credentials")
        cleaned["config"], cleaned["credentials"] = public, encrypt_credentials(secret)
    for name, value in cleaned.items():
        setattr(registry, name, value)
    if {"sync_interval_minutes", "enabled"} & set(cleaned):
        registry.next_sync_at = _next_sync(registry)
    try:
        with transaction.atomic():
            registry.save()
            if "model_visibility" in changed:
                # The registry decides how its models are shared: a change applies to what it synced.
                Model.with_deleted.filter(registry_link__registry=registry).update(visibility=registry.model_visibility)
                from apps.core.shortlived import invalidate_on_commit

                invalidate_on_commit()  # cached token and access decisions (apps/core/shortlived.py)
            record_event(
                action="registry.updated",
                organization=registry.organization_id,
                actor=actor,
                target=registry,
                metadata={"changed": changed},
            )
    except IntegrityError:
        raise field_error(
            "slug", f"“{registry.slug}” is taken by another registry of this organization.", "unique"
        ) from None
    return registry


def delete_registry(*, registry: Registry, actor: Any) -> None:
    """Delete the registry and its run history. The models it synced stay in the catalog, unlinked."""
    with transaction.atomic():
        record_event(
            action="registry.deleted",
            organization=registry.organization_id,
            actor=actor,
            target=registry,
            metadata={"slug": registry.slug, "backend": registry.backend},
        )
        registry.delete()


def check_connection(*, registry: Registry, actor: Any = None) -> tuple[bool, str]:
    """Ask the backend whether it can list (right credentials, reachable); store and return the answer.

    Recorded in the audit trail (``registry.connection_checked``): it uses the stored credentials."""
    try:
        backend = backend_for(registry)
    except (RegistryError, CredentialsUnreadable) as exc:
        message = describe_error(exc) if isinstance(exc, RegistryError) else str(exc)
        _record_check(registry, actor, ok=False, message=message)
        return False, message
    try:
        backend.check()
        message, ok = "", True
    except (Exception, SystemExit) as exc:
        message, ok = describe_error(exc), False
    finally:
        try:
            backend.close()
        except Exception:
            logger.warning("Registry %s: backend close failed", registry.pk, exc_info=True)
    _record_check(registry, actor, ok=ok, message=message)
    return ok, message or "Connected: the registry answered its first page of models."


def _record_check(registry: Registry, actor: Any, *, ok: bool, message: str) -> None:
    with transaction.atomic():
        Registry.objects.filter(pk=registry.pk).update(connection_error=message)
        record_event(
            action="registry.connection_checked",
            organization=registry.organization_id,
            actor=actor,
            target=registry,
            metadata={"ok": ok, "message": message[:500]},
        )
    registry.connection_error = message


# --- syncing ------------------------------------------------------------------------------------------------------
class SyncAlreadyRunning(Exception):
    def __init__(self, sync: RegistrySync) -> None:
        super().__init__(f"A sync of this registry is already {sync.job.status}.")
        self.sync = sync


def active_sync(registry: Registry) -> RegistrySync | None:
    return (
        RegistrySync.objects.filter(registry=registry, job__status__in=ACTIVE)
        .select_related("job")
        .order_by("-id")
        .first()
    )


def start_sync(*, registry: Registry, actor: Any = None, trigger: str = SyncTrigger.MANUAL) -> RegistrySync:
    """Queue a sync job on the ``sync`` queue (row first, message on commit). ``SyncAlreadyRunning`` if one is."""
    from django.conf import settings

    with transaction.atomic():
        # Serialises starts of this registry (the row only: not its organization's).
        Registry.objects.select_for_update(of=("self",)).filter(pk=registry.pk).order_by().values_list("pk").first()
        running = active_sync(registry)
        if running is not None:
            raise SyncAlreadyRunning(running)
        job = start_job(
            kind=SYNC_KIND,
            organization=registry.organization,
            creator=actor if getattr(actor, "is_authenticated", False) else None,
            params={"registry": str(registry.uuid)},
            queue=JobQueue.SYNC,
            time_limit=int(settings.REGISTRY_SYNC_TIME_LIMIT_SECONDS),
        )
        sync = RegistrySync.objects.create(registry=registry, job=job, trigger=trigger)
        Registry.objects.filter(pk=registry.pk).update(last_sync=sync)
    return sync


def run_registry_sync(sync: RegistrySync, progress: Any) -> dict[str, Any]:
    """The job's work: run the engine, then record the outcome on the registry and in one audit event."""
    registry = sync.registry
    outcome: dict[str, Any] = {}
    try:
        backend = backend_for(registry)
    except (RegistryError, CredentialsUnreadable) as exc:
        message = describe_error(exc) if isinstance(exc, RegistryError) else str(exc)
        _finish(sync, ok=False, message=message)
        raise SyncStopped(message) from None
    try:
        outcome = SyncRun(sync=sync, backend=backend, progress=progress).run()
    except SyncStopped as exc:
        sync.refresh_from_db()
        _finish(sync, ok=False, message=str(exc))
        raise
    finally:
        try:
            backend.close()
        except Exception:
            logger.warning("Registry %s: backend close failed", registry.pk, exc_info=True)
    sync.refresh_from_db()
    _finish(sync, ok=True, message="")
    return {**outcome, "registry": str(registry.uuid), "complete": True, "errors": len(sync.errors)}


def _finish(sync: RegistrySync, *, ok: bool, message: str) -> None:
    registry = sync.registry
    with transaction.atomic():
        Registry.objects.filter(pk=registry.pk).update(connection_error=message[:2000])
        record_event(
            action="registry.synced" if ok else "registry.sync_failed",
            organization=registry.organization_id,
            actor=sync.job.creator,
            actor_label="" if sync.job.creator_id else f"schedule of {registry.slug}",
            target=registry,
            metadata={**sync.counts(), "job": str(sync.job.uuid), "trigger": sync.trigger, "error": message[:500]},
        )
        counts = sync.counts()
        transaction.on_commit(lambda: metrics.registry_sync_finished(backend=registry.backend, ok=ok, counts=counts))


def start_due_syncs(*, now: datetime.datetime | None = None, limit: int | None = None) -> list[int]:
    """The scheduler's tick: find every enabled registry whose time has come and that is not syncing, move its
    next time on, and queue ``registries.start_scheduled_syncs`` tasks, one per ``START_CHUNK`` registries
    (each writes its registries' sync jobs).

    The tick itself is a few statements and a message per chunk, so it stays short with a thousand due at
    once. Rows are claimed with ``SKIP LOCKED``: two beat processes never pick the same registry. The next time
    is counted from now, so a portal that was down does not catch up with a burst of runs. At most ``limit``
    (``REGISTRY_SCHEDULER_MAX_STARTS_PER_TICK``) per tick, the longest overdue first. Returns their ids.
    """
    from django.conf import settings

    from apps.registries.tasks import start_scheduled_syncs

    now = now or timezone.now()
    limit = limit or int(settings.REGISTRY_SCHEDULER_MAX_STARTS_PER_TICK)
    with transaction.atomic():
        due = list(
            Registry.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(enabled=True, sync_interval_minutes__gt=0, next_sync_at__lte=now)
            .exclude(syncs__job__status__in=ACTIVE)
            .order_by("next_sync_at")
            .values_list("pk", "sync_interval_minutes")[:limit]
        )
        if not due:
            return []
        by_interval: dict[int, list[int]] = {}
        for pk, minutes in due:
            by_interval.setdefault(minutes, []).append(pk)
        for minutes, pks in by_interval.items():
            Registry.objects.filter(pk__in=pks).update(next_sync_at=now + datetime.timedelta(minutes=minutes))
        ids = [pk for pk, _ in due]
        chunks = [ids[start : start + START_CHUNK] for start in range(0, len(ids), START_CHUNK)]
        transaction.on_commit(lambda: [start_scheduled_syncs.delay(chunk) for chunk in chunks])
    return ids


def start_scheduled_sync_of(registry_id: int) -> RegistrySync | None:
    """The scheduled start of one registry's sync (the tick's task): None when it is gone, disabled or syncing."""
    registry = Registry.objects.filter(pk=registry_id, enabled=True).select_related("organization").first()
    if registry is None:
        return None
    try:
        return start_sync(registry=registry, trigger=SyncTrigger.SCHEDULE)
    except SyncAlreadyRunning:
        return None
