"""The purge job (kind ``marketplace.purge``): remove soft-deleted models whose retention has passed, close expired
upload sessions, then delete the blobs no version references any more (from the database and the storage).

Started per organization through ``POST /api/v1/jobs/`` ``{"kind": "marketplace.purge", "organization": "<slug>"}``
(admins); its models are purged, and unreferenced blobs are collected globally (a blob belongs to nobody). A
blob is only collected once it was last uploaded more than ``BLOB_GRACE`` ago, so a file being added at that
moment keeps its blob.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import TokenScope
from apps.audit.services import record_event
from apps.core.job_services import ProgressReporter
from apps.core.jobs import Job
from apps.core.lookup import ADMINISTER
from apps.core.tasks import JobTask, register_job_task
from apps.marketplace.models import Blob, Model, VersionFile
from apps.marketplace.storage import delete_blob_file, unreferenced_blobs
from apps.marketplace.uploads import expire_upload_sessions

BLOB_GRACE = timedelta(hours=1)


def purge_deleted_models(*, organization: Any = None, actor: Any = None, now: Any = None) -> list[str]:
    """Hard-delete soft-deleted models past ``purge_after`` (of one organization, or all); their names."""
    now = now or timezone.now()
    due = Model.with_deleted.filter(deleted_at__isnull=False, purge_after__lte=now).select_related("organization")
    if organization is not None:
        due = due.filter(organization=organization)
    purged = []
    for model in due:
        with transaction.atomic():
            locked = Model.with_deleted.select_for_update().filter(pk=model.pk, deleted_at__isnull=False).first()
            if locked is None:
                continue
            name = str(model)
            files = VersionFile.objects.filter(version__model=locked).count()
            record_event(
                action="model.purged",
                organization=model.organization_id,
                actor=actor,
                actor_label=None if actor else "system: purge",
                target=locked,
                metadata={"name": name, "files": files, "deleted_at": locked.deleted_at},
            )
            locked.delete()
            purged.append(name)
    return purged


def collect_unreferenced_blobs(*, now: Any = None, grace: timedelta = BLOB_GRACE) -> list[str]:
    """Delete blobs no version file references (last uploaded before ``now - grace``); their SHA-256 digests."""
    now = now or timezone.now()
    cutoff = now - grace
    deleted = []
    for blob in unreferenced_blobs(older_than=cutoff):
        with transaction.atomic():
            # Re-checked under the row's lock: an upload of the same bytes marks the blob used (referenced_at)
            # before it references it, so a blob in use is never deleted.
            locked = Blob.objects.select_for_update().filter(pk=blob.pk, referenced_at__lt=cutoff).first()
            if locked is None or VersionFile.objects.filter(blob=locked).exists():
                continue
            locked.delete()
            transaction.on_commit(lambda blob=locked: delete_blob_file(blob))
        deleted.append(blob.sha256)
    return deleted


def purge(*, organization: Any = None, actor: Any = None, now: Any = None) -> dict[str, Any]:
    """The whole purge: models past retention, expired uploads, unreferenced blobs."""
    models = purge_deleted_models(organization=organization, actor=actor, now=now)
    expired = expire_upload_sessions(now=now)
    blobs = collect_unreferenced_blobs(now=now)
    return {"models": models, "expired_uploads": expired, "blobs": blobs}


class PurgeCatalog(JobTask):
    """Run ``purge`` for the job's organization (models) and the whole store (blobs)."""

    name = "marketplace.purge_catalog"
    kind = "marketplace.purge"
    label = "Catalog purge"
    job_queue = "default"
    job_time_limit = 3600
    user_startable = True
    organization_action = ADMINISTER  # the organization's admins
    required_scope = TokenScope.ADMIN

    def execute(self, job: Job, progress: ProgressReporter) -> dict:
        progress(0.0, "Purging deleted models")
        models = purge_deleted_models(organization=job.organization, actor=job.creator)
        progress(0.4, "Closing expired uploads")
        expired = expire_upload_sessions()
        progress(0.5, "Deleting unreferenced blobs")
        blobs = collect_unreferenced_blobs()
        progress(1.0, f"Purged {len(models)} models and {len(blobs)} blobs")
        return {"models": models, "expired_uploads": expired, "blobs": len(blobs)}


purge_catalog = register_job_task(PurgeCatalog)
