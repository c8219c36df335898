"""The sync engine: read a registry's listing page by page and upsert it into the organization's catalog.

Per page, in one transaction: models whose fingerprint is unchanged only get their "seen by this sync" mark (one
UPDATE); new ones are bulk-inserted (model, link, versions, remote files, aliases); changed ones bulk-updated.
The page's cursor and the run's counts are written in the same transaction, so an attempt that runs again after
a lost worker resumes after the last page written and counts nothing twice.

What can go wrong is kept apart:

* one model's bad data (an id too long, a bad file path, a file that 404s or fails its checksum in mirror mode)
  is recorded against that model, which is skipped; the run goes on;
* the listing itself failing (rate limited, unavailable, malformed, paginating forever, a plugin's bug) is
  retried with backoff that honours ``Retry-After``, resuming at the last cursor; when retries run out the run
  stops, keeps what it wrote, marks nothing as removed, and fails with the reason;
* only a complete listing marks the models it no longer holds as removed upstream (marked, not deleted).

A sync writes one audit event with its counts, not one per model.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import logging
import queue
import random
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.job_services import JobClaimLost
from apps.marketplace.models import Alias, Model, ModelVersion, ValidationStatus, VersionStatus
from apps.marketplace.services import MAX_TAG_LENGTH, MAX_TAGS, normalize_path
from apps.registries.bulk import (
    any_of,
    copy_timestamp,
    insert_tuples,
    new_uuids,
    relax_commit,
)
from apps.registries.crypto import decrypt_credentials
from apps.registries.interpreter import sync_interpreter_settings
from apps.registries.models import Registry, RegistryMode, RegistryModel, RegistrySync, RemoteFile
from apps.registries.naming import alias_name_for, catalog_name_for, disambiguated_name, version_label_for
from apps.registries.sdk import (
    BackendContext,
    ModelPage,
    NetworkPolicy,
    RateLimited,
    RegistryBackend,
    RegistryError,
    RemoteModel,
    backend_class,
)

logger = logging.getLogger(__name__)

MAX_RECORDED_ERRORS = 200
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class SyncStopped(Exception):
    """The listing could not be read to its end; what was written before stays."""


class BackendMissing(RegistryError):
    """The registry's backend is not installed in this portal (its plugin was removed or failed to load)."""


def portal_context() -> BackendContext:
    """The context every backend gets: the operator's network allow-list, file roots and timeout."""
    return BackendContext(
        policy=NetworkPolicy(allowed=tuple(settings.REGISTRY_ALLOWED_NETWORKS)),
        file_roots=tuple(Path(root) for root in settings.REGISTRY_FILE_ROOTS),
        timeout=float(settings.REGISTRY_HTTP_TIMEOUT_SECONDS),
    )


def backend_for(registry: Registry, *, context: BackendContext | None = None) -> RegistryBackend:
    """The registry's backend, configured with its parameters and decrypted credentials."""
    cls = backend_class(registry.backend)
    if cls is None:
        raise BackendMissing(f"The backend “{registry.backend}” is not installed in this portal.")
    config = {**cls.presets, **registry.config, **decrypt_credentials(registry.credentials)}
    try:
        return cls(config, context=context or portal_context())
    except RegistryError:
        raise
    except Exception as exc:  # a plugin's constructor is plugin code too
        raise RegistryError(f"The backend “{registry.backend}” failed to start: {type(exc).__name__}: {exc}") from exc


# --- filters and preparation ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    """What of a listing enters the catalog: glob patterns on ids, tags (any of), licenses (one of)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    licenses: frozenset[str] = frozenset()

    @classmethod
    def of(cls, registry: Registry) -> Filters:
        return cls(
            include=tuple(registry.include_patterns or ()),
            exclude=tuple(registry.exclude_patterns or ()),
            tags=frozenset(tag.lower() for tag in registry.tags or ()),
            licenses=frozenset(license.lower() for license in registry.licenses or ()),
        )

    def admits(self, model: RemoteModel) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(model.id, pattern) for pattern in self.include):
            return False
        if any(fnmatch.fnmatchcase(model.id, pattern) for pattern in self.exclude):
            return False
        if self.tags and not self.tags.intersection(str(tag).lower() for tag in model.tags):
            return False
        return not (self.licenses and str(model.license or "").lower() not in self.licenses)


class ModelRejected(ValueError):
    """One model's data cannot enter the catalog; the reason is recorded and the run goes on."""


@dataclass
class PreparedFile:
    path: str
    size: int | None
    sha256: str
    locator: str


@dataclass
class PreparedVersion:
    label: str
    upstream_label: str
    description: str
    aliases: list[str]
    files: list[PreparedFile]


@dataclass
class PreparedModel:
    external_id: str
    fingerprint: str
    fields: dict[str, Any]
    upstream_url: str
    versions: list[PreparedVersion]
    tags_json: str = "[]"


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ("" if value is None else str(value)[:limit])


@functools.lru_cache(maxsize=4096)
def _cached_path(path: str) -> str:
    return normalize_path(path)


@functools.lru_cache(maxsize=4096)
def _cached_label(label: str) -> str:
    return version_label_for(label)


@functools.lru_cache(maxsize=4096)
def _cached_alias(alias: str) -> str | None:
    return alias_name_for(alias)


def _tags(values: Iterable[Any]) -> list[str]:
    cleaned: list[str] = []
    for value in values or ():
        tag = str(value).strip().lower()
        if tag and len(tag) <= MAX_TAG_LENGTH and tag.isprintable() and tag not in cleaned:
            cleaned.append(tag)
    return cleaned[:MAX_TAGS]


def check_id(model_id: Any) -> None:
    if not isinstance(model_id, str) or not model_id.strip():
        raise ModelRejected("The model has no id.")
    if len(model_id) > 300:
        raise ModelRejected(f"The id is {len(model_id)} characters long; at most 300 are kept.")
    if "\x00" in model_id:
        raise ModelRejected("The id contains a NUL character.")


def prepare(remote: RemoteModel, *, fingerprint: str | None = None) -> PreparedModel:
    """The catalog's view of a remote model, or ``ModelRejected`` with the reason."""
    check_id(remote.id)
    versions: list[PreparedVersion] = []
    labels: set[str] = set()
    for remote_version in remote.versions or ():
        label = _cached_label(str(remote_version.label))
        if label in labels:
            raise ModelRejected(f"Two versions map to the catalog label “{label}”.")
        labels.add(label)
        files = []
        paths: set[str] = set()
        for remote_file in remote_version.files or ():
            try:
                path = (
                    _cached_path(remote_file.path)
                    if isinstance(remote_file.path, str)
                    else normalize_path(remote_file.path)
                )
            except ValidationError as exc:
                raise ModelRejected(
                    f"Version {remote_version.label}: file “{str(remote_file.path)[:100]}”: {exc.messages[0]}"
                ) from None
            if path in paths:
                raise ModelRejected(f"Version {remote_version.label} lists “{path}” twice.")
            paths.add(path)
            size = remote_file.size
            if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
                raise ModelRejected(f"Version {remote_version.label}: “{path}” has size {size!r}, not a byte count.")
            sha256 = (remote_file.sha256 or "").lower()
            if sha256 and not SHA256.match(sha256):
                raise ModelRejected(
                    f"Version {remote_version.label}: “{path}” has a SHA-256 that is not 64 hex digits."
                )
            files.append(PreparedFile(path=path, size=size, sha256=sha256, locator=_text(remote_file.locator, 4000)))
        aliases = [name for name in (_cached_alias(str(alias)) for alias in remote_version.aliases or ()) if name]
        versions.append(
            PreparedVersion(
                label=label,
                upstream_label=_text(remote_version.label, 200),
                description=_text(remote_version.description, 50_000),
                aliases=aliases,
                files=files,
            )
        )
    summary = " ".join(_text(remote.summary, 2000).split())[:300]
    fields = {
        "summary": summary,
        "card": _text(remote.card, 200_000),
        "task": _text(remote.task, 60),
        "tags": _tags(remote.tags),
        "license": _text(remote.license, 100),
    }
    url = _text(remote.url, 500) if str(remote.url or "").startswith(("http://", "https://")) else ""
    return PreparedModel(
        tags_json=json.dumps(fields["tags"]),
        external_id=remote.id,
        fingerprint=fingerprint or remote.content_fingerprint()[:64],
        fields=fields,
        upstream_url=url,
        versions=versions,
    )


# --- retries --------------------------------------------------------------------------------------------------------
@dataclass
class RetryPolicy:
    attempts: int = 4
    backoff: float = 1.0
    max_wait: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            attempts=int(settings.REGISTRY_RETRY_ATTEMPTS),
            backoff=float(settings.REGISTRY_RETRY_BACKOFF_SECONDS),
            max_wait=float(settings.REGISTRY_RETRY_MAX_WAIT_SECONDS),
        )

    def delay(self, error: RegistryError, attempt: int) -> float | None:
        """Seconds to wait before retry ``attempt`` (1-based), or None to give up."""
        if not error.retryable or attempt > self.attempts:
            return None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after) if retry_after <= self.max_wait else None
        return min(self.max_wait, self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 4))


def describe_error(error: BaseException) -> str:
    if isinstance(error, RegistryError):
        return f"{type(error).__name__}: {error.message}"
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return f"The backend failed with an unexpected error (a bug in the backend): {last}"[:1000]


@dataclass
class Examined:
    """A page looked at without the database: what is admitted, each model's fingerprint, what was rejected,
    and (when examined ahead, in the listing thread) each admitted model prepared in full."""

    seen: int = 0
    skipped: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    candidates: dict[str, tuple[RemoteModel, str]] = field(default_factory=dict)
    prepared: dict[str, PreparedModel | str] = field(default_factory=dict)


def examine(page: ModelPage, filters: Filters, *, prepare_all: bool = False) -> Examined:
    """Filters, ids and fingerprints of a page's models; with ``prepare_all`` their full preparation too (errors
    as text). Pure: safe in the listing thread."""
    examined = Examined()
    for remote in page.models:
        examined.seen += 1
        model_id = str(getattr(remote, "id", "?"))
        try:
            if not isinstance(remote, RemoteModel):
                raise ModelRejected(f"The backend listed a {type(remote).__name__}, not a RemoteModel.")
            if not filters.admits(remote):
                examined.skipped += 1
                continue
            check_id(remote.id)
            if remote.id in examined.candidates:
                raise ModelRejected("The model is listed twice in one page.")
            examined.candidates[remote.id] = (remote, remote.content_fingerprint()[:64])
        except ModelRejected as exc:
            examined.rejected.append((model_id, str(exc)))
        except Exception as exc:  # a RemoteModel whose fields a plugin filled with something odd
            examined.rejected.append((model_id, describe_error(exc)))
    if prepare_all:
        for model_id, (remote, fingerprint) in examined.candidates.items():
            try:
                examined.prepared[model_id] = prepare(remote, fingerprint=fingerprint)
            except ModelRejected as exc:
                examined.prepared[model_id] = str(exc)
            except Exception as exc:
                examined.prepared[model_id] = describe_error(exc)
    return examined


def read_ahead(pages: Iterator[Any], transform: Callable[[Any], Any] | None = None, depth: int = 2) -> Iterator[Any]:
    """``pages``, produced by a thread up to ``depth`` pages ahead, each with ``transform(page)`` computed there
    too (``(page, transform(page))``). Whatever the producer raises is raised here, at the point of the listing
    where it happened; stopping early lets the producer end at its next page."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                item = (page, transform(page) if transform is not None else None)
                while not stop.is_set():
                    try:
                        buffer.put(("page", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which decides (retry, record, stop)
            buffer.put(("error", exc))

    producer = threading.Thread(target=produce, name="registry-listing", daemon=True)
    producer.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "page":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()


# --- the run ----------------------------------------------------------------------------------------------------
@dataclass
class SyncRun:
    """One attempt of a sync: reads pages from ``cursor`` on, writes them, and finishes the run's record."""

    sync: RegistrySync
    backend: RegistryBackend
    progress: Callable[..., None]
    retry: RetryPolicy | None = None
    max_pages: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.retry = self.retry or RetryPolicy.from_settings()
        self.registry = self.sync.registry
        self.filters = Filters.of(self.registry)
        self.max_pages = self.max_pages or int(settings.REGISTRY_MAX_PAGES)
        self.errors = list(self.sync.errors or [])
        self.total: int | None = None
        self._skipped_list: list | None = None
        self._skipped_read = 0
        self.pages_read = self.sync.pages

    # -- listing ---------------------------------------------------------------------------------------------
    def settings_digest(self) -> str:
        """What, besides the registry's content, decides what a sync writes: backend settings, filters, mode."""
        registry = self.registry
        payload = json.dumps(
            [
                registry.backend,
                registry.config,
                registry.credentials,
                registry.include_patterns,
                registry.exclude_patterns,
                registry.tags,
                registry.licenses,
                registry.mode,
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def unchanged_since_last_sync(self) -> bool:
        """Before a fresh listing: record the backend's snapshot; True when it equals the last clean run's."""
        try:
            snapshot = self.backend.listing_snapshot()
        except (JobClaimLost, SoftTimeLimitExceeded):
            raise
        except Exception:  # a snapshot is an optimisation: any trouble means "read the listing"
            logger.warning("Registry %s: listing_snapshot failed", self.registry.pk, exc_info=True)
            snapshot = None
        if not snapshot:
            return False
        snapshot = f"{self.settings_digest()}|{snapshot}"[:500]
        RegistrySync.objects.filter(pk=self.sync.pk).update(snapshot=snapshot)
        self.sync.snapshot = snapshot
        previous = (
            RegistrySync.objects.filter(registry=self.registry, complete=True, job__status="succeeded")
            .exclude(pk=self.sync.pk)
            .order_by("-created_at", "-id")
            .values("snapshot", "failed")
            .first()
        )
        return bool(previous) and previous["snapshot"] == snapshot and previous["failed"] == 0

    def mark_all_seen(self) -> dict[str, Any]:
        """The listing is unchanged: every model the registry still lists is seen by this run, in one UPDATE."""
        with transaction.atomic():
            seen = RegistryModel.objects.filter(registry=self.registry, removed_upstream_at=None).update(
                last_seen_sync_id=self.sync.pk
            )
            RegistrySync.objects.filter(pk=self.sync.pk).update(
                seen=seen, unchanged=seen, complete=True, unchanged_listing=True
            )
        self.sync.seen = self.sync.unchanged = seen
        self.sync.complete = self.sync.unchanged_listing = True
        self.progress(0.99, f"The registry's listing has not changed since the last sync: {seen:,} models kept.")
        return self.sync.counts()

    def run(self) -> dict[str, Any]:
        cursor: str | None = self.sync.cursor or None
        if cursor is None and self.sync.pages == 0 and self.unchanged_since_last_sync():
            return self.mark_all_seen()
        with sync_interpreter_settings():
            return self.read_listing(cursor)

    def read_listing(self, cursor: str | None) -> dict[str, Any]:
        attempt = 0
        stopped: str = ""
        self.pages_read = self.sync.pages
        while True:
            try:
                for page, examined in self.pages_from(cursor):
                    if not isinstance(page, ModelPage):
                        raise RegistryError(f"The backend yielded {type(page).__name__} instead of a ModelPage.")
                    attempt = 0
                    if self.pages_read >= self.max_pages:
                        raise SyncStopped(
                            f"The registry listed more than {self.max_pages} pages; the sync stopped there "
                            "(does its pagination loop?)."
                        )
                    self.total = page.total if page.total is not None else self.total
                    self.write_page(page, examined)
                    self.pages_read += 1
                    cursor = page.cursor
                    self.report()
                    if cursor is None:
                        break
                break
            except (JobClaimLost, SoftTimeLimitExceeded, SyncStopped):
                raise
            except RegistryError as exc:
                attempt += 1
                wait = self.retry.delay(exc, attempt)
                if wait is None:
                    stopped = describe_error(exc)
                    if isinstance(exc, RateLimited) and exc.retry_after:
                        stopped += f" (the registry asked to wait {exc.retry_after:.0f} s)"
                    break
                RegistrySync.objects.filter(pk=self.sync.pk).update(retries=F("retries") + 1)
                self.progress(self.fraction(), f"{describe_error(exc)[:150]}; retrying in {wait:.1f} s")
                self.retry.sleep(wait)
            except (Exception, SystemExit) as exc:
                # Anything else a backend raises is its bug: record it, never take the worker down.
                logger.warning("Registry %s: backend raised %s", self.registry.pk, exc, exc_info=True)
                stopped = describe_error(exc)
                break
        if stopped:
            raise SyncStopped(
                f"The listing stopped after {self.sync.pages} pages: {stopped} Kept what was synced before; "
                "nothing was marked as removed."
            )
        return self.finish_complete()

    def pages_from(self, cursor: str | None) -> Iterator[Any]:
        """The backend's pages from ``cursor``. In metadata mode the next page is read in a thread while this one
        is written (the backend is then used by that thread alone); mirror mode fetches files between pages, so
        it reads them here."""
        if self.registry.mode != RegistryMode.METADATA:
            for page in self.backend.iter_models(cursor):
                yield page, None
            return

        def ahead(page: Any) -> Examined | None:
            # Preparing every model costs time wasted on unchanged ones, but it runs while this thread waits for
            # the database, and it is what a first sync (every model new) spends most of its Python time on.
            return examine(page, self.filters, prepare_all=True) if isinstance(page, ModelPage) else None

        yield from read_ahead(self.backend.iter_models(cursor), ahead)

    def fraction(self) -> float:
        if self.total:
            return min(0.99, self.sync.seen / self.total)
        return min(0.95, 1 - 1 / (1 + self.sync.pages / 10))

    def report(self) -> None:
        s = self.sync
        total = f" of {self.total:,}" if self.total else ""
        self.progress(
            self.fraction(),
            f"{s.seen:,}{total} models read: {s.created:,} new, {s.updated:,} updated, {s.failed:,} failed",
        )

    # -- one page ----------------------------------------------------------------------------------------------
    def record_error(self, model_id: str, message: str) -> None:
        if len(self.errors) < MAX_RECORDED_ERRORS:
            self.errors.append({"model": str(model_id)[:300], "error": str(message)[:1000]})

    def write_page(self, page: ModelPage, examined: Examined | None = None) -> None:
        counts = {"seen": 0, "created": 0, "updated": 0, "unchanged": 0, "failed": 0, "skipped": 0}
        self.collect_skipped(counts)
        # 1. What the page lists, with each model's fingerprint (examined ahead, or now).
        if examined is None:
            examined = examine(page, self.filters)
        counts["seen"] += examined.seen
        counts["skipped"] += examined.skipped
        for model_id, message in examined.rejected:
            counts["failed"] += 1
            self.record_error(model_id, message)
        candidates = examined.candidates
        # 2. What the catalog has of them: one query.
        links = (
            {
                row["external_id"]: row
                for row in RegistryModel.objects.filter(registry=self.registry)
                .filter(any_of(RegistryModel, "external_id", list(candidates)))
                .values("id", "external_id", "fingerprint", "model_id", "removed_upstream_at")
            }
            if candidates
            else {}
        )
        # 3. Unchanged ones only get their mark; new and changed ones are prepared in full.
        unchanged: list[int] = []
        new: list[PreparedModel] = []
        changed: list[tuple[PreparedModel, dict]] = []
        for model_id, (remote, fingerprint) in candidates.items():
            link = links.get(model_id)
            if link is not None and link["fingerprint"] == fingerprint and link["removed_upstream_at"] is None:
                unchanged.append(link["id"])
                continue
            item = examined.prepared.get(model_id)
            if isinstance(item, str):
                counts["failed"] += 1
                self.record_error(model_id, item)
                continue
            try:
                item = item or prepare(remote, fingerprint=fingerprint)
            except ModelRejected as exc:
                counts["failed"] += 1
                self.record_error(model_id, str(exc))
                continue
            except Exception as exc:
                counts["failed"] += 1
                self.record_error(model_id, describe_error(exc))
                continue
            if link is None:
                new.append(item)
            else:
                changed.append((item, link))
        # 4. One transaction: the writes, the cursor and the counts.
        fetch = self.store(page, counts, new, changed, unchanged)
        if self.registry.mode == RegistryMode.MIRROR and fetch:
            self.mirror(fetch)

    def store(
        self,
        page: ModelPage,
        counts: dict[str, int],
        new: list[PreparedModel],
        changed: list[tuple[PreparedModel, dict]],
        unchanged: list[int],
    ) -> list[tuple[PreparedModel, int]]:
        """Write one page and its cursor in one transaction; a refused bulk write is redone model by model."""
        try:
            with transaction.atomic():
                relax_commit()
                fetch = self.upsert(new, changed, unchanged, counts)
                self.save_progress(page, counts)
            return fetch
        except DatabaseError:
            # One bad row fails a whole bulk statement: write the page model by model to find it.
            logger.warning("Registry %s: bulk write failed, retrying the page one model at a time", self.registry.pk)
        fetch = []
        counts = {**counts, "created": 0, "updated": 0, "unchanged": 0}
        with transaction.atomic():
            self.upsert([], [], unchanged, counts)
        singles = [([item], []) for item in new] + [([], [pair]) for pair in changed]
        for one_new, one_changed in singles:
            try:
                with transaction.atomic():
                    fetch += self.upsert(one_new, one_changed, [], counts)
            except DatabaseError as exc:
                item = (one_new or [pair[0] for pair in one_changed])[0]
                counts["failed"] += 1
                self.record_error(item.external_id, f"The catalog refused it: {str(exc).splitlines()[0][:300]}")
        with transaction.atomic():
            self.save_progress(page, counts)
        return fetch

    def collect_skipped(self, counts: dict[str, int]) -> None:
        """Entries a backend left out of its listing (``backend.skipped``: a list of objects with ``location``,
        ``reason`` and ``model_id``): each one is a failed model of this run, with where and why."""
        skipped = getattr(self.backend, "skipped", None)
        if not isinstance(skipped, list):
            return
        if skipped is not self._skipped_list:
            self._skipped_list, self._skipped_read = skipped, 0
        for entry in skipped[self._skipped_read :]:
            counts["failed"] += 1
            location = getattr(entry, "location", "")
            reason = getattr(entry, "reason", str(entry))
            self.record_error(getattr(entry, "model_id", "") or location or "?", f"{location}: {reason}".strip(": "))
        self._skipped_read = len(skipped)

    def save_progress(self, page: ModelPage, counts: dict[str, int]) -> None:
        s = self.sync
        s.cursor = page.cursor or ""
        s.pages += 1
        for name, value in counts.items():
            setattr(s, name, getattr(s, name) + value)
        s.errors = self.errors
        RegistrySync.objects.filter(pk=s.pk).update(
            cursor=s.cursor,
            pages=s.pages,
            errors=s.errors,
            **{name: getattr(s, name) for name in counts},
        )

    def upsert(
        self,
        new: list[PreparedModel],
        changed: list[tuple[PreparedModel, dict]],
        unchanged: list[int],
        counts: dict[str, int],
    ) -> list[tuple[PreparedModel, int]]:
        """Write one page's outcome; returns (model, version id) pairs whose files a mirror sync must fetch."""
        registry, now, sync_id = self.registry, timezone.now(), self.sync.pk
        stamp = copy_timestamp(now)
        if unchanged:
            RegistryModel.objects.filter(any_of(RegistryModel, "id", unchanged)).update(last_seen_sync_id=sync_id)
            counts["unchanged"] += len(unchanged)
        if not new and not changed:
            return []
        model_ids: dict[str, int] = {}
        if new:
            names = self.names_for(new)
            org_id, visibility, source = registry.organization_id, registry.model_visibility, registry.slug
            ids = insert_tuples(
                Model,
                MODEL_COLUMNS,
                [
                    (
                        model_uuid,
                        org_id,
                        names[item.external_id],
                        item.fields["summary"],
                        item.fields["card"],
                        item.fields["task"],
                        item.tags_json,
                        item.fields["license"],
                        visibility,
                        source,
                        item.external_id,
                        stamp,
                        stamp,
                    )
                    for item, model_uuid in zip(new, new_uuids(len(new)), strict=True)
                ],
                return_ids=True,
            )
            for item, model_id in zip(new, ids, strict=True):
                model_ids[item.external_id] = model_id
            insert_tuples(
                RegistryModel,
                LINK_COLUMNS,
                [
                    (
                        registry.pk,
                        model_ids[item.external_id],
                        item.external_id,
                        item.fingerprint,
                        item.upstream_url,
                        sync_id,
                        stamp,
                        stamp,
                    )
                    for item in new
                ],
            )
            counts["created"] += len(new)
        if changed:
            updates = []
            for item, link in changed:
                model_ids[item.external_id] = link["model_id"]
                updates.append(Model(pk=link["model_id"], updated_at=now, **item.fields))
            Model.with_deleted.bulk_update(updates, [*PreparedFields, "updated_at"])
            RegistryModel.objects.bulk_update(
                [
                    RegistryModel(
                        pk=link["id"],
                        fingerprint=item.fingerprint,
                        upstream_url=item.upstream_url,
                        last_seen_sync_id=sync_id,
                        removed_upstream_at=None,
                        updated_at=now,
                    )
                    for item, link in changed
                ],
                ["fingerprint", "upstream_url", "last_seen_sync_id", "removed_upstream_at", "updated_at"],
            )
            counts["updated"] += len(changed)
        new_model_ids = {model_ids[item.external_id] for item in new}
        return self.upsert_versions([*new, *(item for item, _ in changed)], model_ids, new_model_ids, now)

    def taken_names(self, names: list[str]) -> set[str]:
        return set(
            Model.with_deleted.filter(organization_id=self.registry.organization_id)
            .filter(any_of(Model, "name", names))
            .order_by()
            .values_list("name", flat=True)
        )

    def names_for(self, new: list[PreparedModel]) -> dict[str, str]:
        """Catalog names for new models: the mapped id, or with a hash of the id when that name is taken (by
        another model of the organization, or by another id of the page that maps to the same name)."""
        wanted = {item.external_id: catalog_name_for(item.external_id) for item in new}
        taken = self.taken_names(list(wanted.values()))
        names: dict[str, str] = {}
        clashing: list[str] = []
        for external_id, name in wanted.items():
            if name in taken:
                clashing.append(external_id)
            else:
                taken.add(name)
                names[external_id] = name
        if clashing:
            fallback = {external_id: disambiguated_name(external_id) for external_id in clashing}
            taken |= self.taken_names(list(fallback.values()))
            for external_id, name in fallback.items():
                if name in taken:
                    raise DatabaseError(f"the catalog names for {external_id} are taken")
                taken.add(name)
                names[external_id] = name
        return names

    def upsert_versions(
        self, items: list[PreparedModel], model_ids: dict[str, int], new_model_ids: set[int], now: Any
    ) -> list[tuple[PreparedModel, int]]:
        """Versions, remote files and aliases of the page's new and changed models. Rows of new versions go in
        through COPY; rows that may exist already (a changed model's files and aliases) are upserted."""
        if not items:
            return []
        changed_ids = [
            model_ids[item.external_id] for item in items if model_ids[item.external_id] not in new_model_ids
        ]
        existing = {
            (row["model_id"], row["label"]): row["id"]
            for row in ModelVersion.objects.filter(model_id__in=changed_ids).values("id", "model_id", "label")
        }
        stamp = copy_timestamp(now)
        published, unvalidated = str(VersionStatus.PUBLISHED.value), str(ValidationStatus.NONE.value)
        new_rows: list[tuple] = []
        keys: list[tuple[int, str]] = []
        for item in items:
            model_id = model_ids[item.external_id]
            for version in item.versions:
                if (model_id, version.label) not in existing:
                    new_rows.append((model_id, version.label, published, version.description))
                    keys.append((model_id, version.label))
        created_ids = insert_tuples(
            ModelVersion,
            VERSION_COLUMNS,
            [
                (uid, model_id, label, status, changelog, "{}", "{}", "", unvalidated, "", stamp, "", stamp, stamp)
                for (model_id, label, status, changelog), uid in zip(new_rows, new_uuids(len(new_rows)), strict=True)
            ],
            return_ids=True,
        )
        for key, version_id in zip(keys, created_ids, strict=True):
            existing[key] = version_id
        created_versions = set(created_ids)
        fresh_files, other_files, fresh_aliases, other_aliases, fetch = [], [], {}, {}, []
        for item in items:
            model_id = model_ids[item.external_id]
            for version in item.versions:
                version_id = existing[(model_id, version.label)]
                for prepared_file in version.files:
                    row = (
                        version_id,
                        prepared_file.path,
                        version.upstream_label,
                        prepared_file.size,
                        prepared_file.sha256,
                        prepared_file.locator,
                    )
                    (fresh_files if version_id in created_versions else other_files).append(row)
                for alias in version.aliases:
                    # The last version listing an alias holds it.
                    if model_id in new_model_ids:
                        fresh_aliases[(model_id, alias)] = (model_id, alias, version_id, stamp, stamp)
                    else:
                        other_aliases[(model_id, alias)] = Alias(
                            model_id=model_id, name=alias, version_id=version_id, created_at=now, updated_at=now
                        )
                if version.files:
                    fetch.append((item, version_id))
        insert_tuples(RemoteFile, REMOTE_FILE_COLUMNS, [(*row, "") for row in fresh_files])
        if other_files:
            RemoteFile.objects.bulk_create(
                [RemoteFile(**dict(zip(REMOTE_FILE_COLUMNS, row, strict=False))) for row in other_files],
                update_conflicts=True,
                unique_fields=["version", "path"],
                update_fields=["upstream_label", "size", "sha256", "locator"],
            )
        insert_tuples(Alias, ALIAS_COLUMNS, list(fresh_aliases.values()))
        if other_aliases:
            Alias.objects.bulk_create(
                list(other_aliases.values()),
                update_conflicts=True,
                unique_fields=["model", "name"],
                update_fields=["version", "updated_at"],
            )
        return fetch

    # -- mirror mode -------------------------------------------------------------------------------------------
    def mirror(self, fetch: list[tuple[PreparedModel, int]]) -> None:
        from apps.registries.fetch import fetch_remote_file

        for item, version_id in fetch:
            pending = RemoteFile.objects.filter(version_id=version_id, fetched_at=None)
            for remote in pending:
                try:
                    fetch_remote_file(self.backend, remote, external_id=item.external_id, label=remote.upstream_label)
                    RegistrySync.objects.filter(pk=self.sync.pk).update(files_fetched=F("files_fetched") + 1)
                except (JobClaimLost, SoftTimeLimitExceeded):
                    raise
                except Exception as exc:
                    message = describe_error(exc)
                    RemoteFile.objects.filter(pk=remote.pk).update(fetch_error=message[:500])
                    # The model stays with what it had; an empty fingerprint makes the next sync try again.
                    RegistryModel.objects.filter(registry=self.registry, external_id=item.external_id).update(
                        fingerprint=""
                    )
                    self.sync.failed += 1
                    self.record_error(item.external_id, f"{remote.path}: {message}")
                    RegistrySync.objects.filter(pk=self.sync.pk).update(failed=F("failed") + 1, errors=self.errors)
                    break
                if hasattr(self.progress, "heartbeat"):
                    self.progress.heartbeat()

    # -- the end -------------------------------------------------------------------------------------------------
    def finish_complete(self) -> dict[str, Any]:
        """The whole listing was read: mark what it no longer holds, and close the run."""
        now = timezone.now()
        removed = (
            RegistryModel.objects.filter(registry=self.registry, removed_upstream_at=None)
            .filter(Q(last_seen_sync_id__isnull=True) | ~Q(last_seen_sync_id=self.sync.pk))
            .update(removed_upstream_at=now)
        )
        self.sync.removed += removed
        self.sync.complete = True
        RegistrySync.objects.filter(pk=self.sync.pk).update(removed=self.sync.removed, complete=True)
        return self.sync.counts()


PreparedFields = ("summary", "card", "task", "tags", "license")

# The columns the engine writes through COPY, in its tuples' order (every NOT NULL column of each table:
# tests/registries/test_bulk_columns.py keeps these lists honest when the models change).
MODEL_COLUMNS = (
    "uuid",
    "organization_id",
    "name",
    "summary",
    "card",
    "task",
    "tags",
    "license",
    "visibility",
    "source_registry",
    "external_id",
    "created_at",
    "updated_at",
)
LINK_COLUMNS = (
    "registry_id",
    "model_id",
    "external_id",
    "fingerprint",
    "upstream_url",
    "last_seen_sync_id",
    "first_seen_at",
    "updated_at",
)
VERSION_COLUMNS = (
    "uuid",
    "model_id",
    "label",
    "status",
    "changelog",
    "signature",
    "onnx_info",
    "detected_task",
    "validation_status",
    "validation_message",
    "published_at",
    "yank_reason",
    "created_at",
    "updated_at",
)
REMOTE_FILE_COLUMNS = ("version_id", "path", "upstream_label", "size", "sha256", "locator", "fetch_error")
ALIAS_COLUMNS = ("model_id", "name", "version_id", "created_at", "updated_at")
COPY_COLUMNS = {
    "marketplace.Model": MODEL_COLUMNS,
    "registries.RegistryModel": LINK_COLUMNS,
    "marketplace.ModelVersion": VERSION_COLUMNS,
    "registries.RemoteFile": REMOTE_FILE_COLUMNS,
    "marketplace.Alias": ALIAS_COLUMNS,
}
