"""Fetching a registry file into the artifact store: streamed, size-bounded, checked against its checksum.

Used by mirror-mode syncs (every file at sync time) and by metadata-mode downloads (a file on its first use).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.marketplace.models import ModelVersion, VersionFile
from apps.marketplace.services import role_for_path
from apps.marketplace.storage import spool_chunks, store_spooled
from apps.registries.models import RemoteFile
from apps.registries.sdk import ChecksumMismatch, InvalidResponse, RegistryBackend
from apps.registries.sdk import RemoteFile as SdkRemoteFile


def fetch_remote_file(backend: RegistryBackend, remote: RemoteFile, *, external_id: str, label: str) -> VersionFile:
    """Download ``remote`` through ``backend``, check it, store it as a Blob and attach it to its version.

    Raises the backend's SDK errors, ``ChecksumMismatch`` when the bytes differ from the listed SHA-256 and
    ``InvalidResponse`` when the size differs or passes ``ONNX_MAX_FILE_BYTES``; nothing is attached then.
    """
    listed = SdkRemoteFile(path=remote.path, size=remote.size, sha256=remote.sha256 or None, locator=remote.locator)
    try:
        spooled = spool_chunks(backend.open_file(external_id, label, listed), limit=int(settings.ONNX_MAX_FILE_BYTES))
    except ValueError as exc:  # spool_chunks refuses more than the limit
        raise InvalidResponse(f"{remote.path}: {exc}") from None
    if remote.sha256 and spooled.sha256 != remote.sha256.lower():
        spooled.discard()
        raise ChecksumMismatch(
            f"{remote.path}: the registry listed SHA-256 {remote.sha256[:12]}…, the bytes served hash to "
            f"{spooled.sha256[:12]}…; the file was not stored."
        )
    if remote.size is not None and spooled.size != remote.size:
        spooled.discard()
        raise InvalidResponse(f"{remote.path}: the registry listed {remote.size} bytes and served {spooled.size}.")
    blob = store_spooled(spooled)
    try:
        with transaction.atomic():
            version_file, _ = VersionFile.objects.get_or_create(
                version_id=remote.version_id,
                path=remote.path,
                defaults={"blob": blob, "role": role_for_path(remote.path)},
            )
    except IntegrityError:
        version_file = VersionFile.objects.get(version_id=remote.version_id, path=remote.path)
    RemoteFile.objects.filter(pk=remote.pk).update(fetched_at=timezone.now(), fetch_error="", sha256=blob.sha256)
    return version_file


def fetch_on_first_use(version: ModelVersion, path: str) -> VersionFile | None:
    """The ``VersionFile`` for ``path`` of a synced version, fetched from its registry now if it is only listed.

    ``None`` when the version has no such remote file. Registry errors propagate (the download view answers
    502 with their message).
    """
    from apps.registries.sync import backend_for  # the engine imports this module

    remote = RemoteFile.objects.filter(version=version, path=path).select_related("version__model").first()
    if remote is None:
        return None
    link: Any = getattr(version.model, "registry_link", None)
    if link is None:
        return None
    backend = backend_for(link.registry)
    try:
        return fetch_remote_file(backend, remote, external_id=link.external_id, label=remote_label(remote))
    except Exception as exc:
        RemoteFile.objects.filter(pk=remote.pk).update(fetch_error=str(exc)[:500])
        raise
    finally:
        backend.close()


def remote_label(remote: RemoteFile) -> str:
    """The registry's own label of the version (ours may differ: catalog labels have stricter rules)."""
    return remote.upstream_label or remote.version.label
