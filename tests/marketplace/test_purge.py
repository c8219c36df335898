"""Deletion loses nothing by accident: a deleted model is kept for its retention period, then the purge job removes
it and the blobs no version references any more, and only those."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import ProtectedError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.job_services import job_kinds
from apps.core.jobs import Job
from apps.marketplace import purge, services, storage
from apps.marketplace.models import Blob, Model
from tests.marketplace.conftest import iris_bytes, random_bytes, sha256_of

pytestmark = pytest.mark.django_db


def _later(days: int):
    return timezone.now() + timedelta(days=days)


@pytest.fixture
def two_models(catalog):
    shared = iris_bytes()
    own = random_bytes(1000)
    doomed = catalog.model("doomed")
    catalog.published(doomed, "1.0", files={"model.onnx": shared, "weights.bin": own})
    kept = catalog.model("kept")
    catalog.published(kept, "1.0", files={"model.onnx": shared})
    Blob.objects.update(referenced_at=timezone.now() - timedelta(days=1))
    return doomed, kept, shared, own


def test_purge_waits_for_the_retention_period(catalog, two_models):
    doomed, _, _, _ = two_models
    services.soft_delete_model(model=doomed, actor=catalog.world.user("admin"))
    result = purge.purge(now=timezone.now())
    assert result["models"] == []
    assert Model.with_deleted.filter(pk=doomed.pk).exists()
    assert Blob.objects.count() == 2


def test_purge_removes_the_model_and_only_the_blobs_nothing_else_references(
    catalog, two_models, django_capture_on_commit_callbacks
):
    doomed, kept, shared, own = two_models
    services.soft_delete_model(model=doomed, actor=catalog.world.user("admin"))
    own_blob = Blob.objects.get(sha256=sha256_of(own))
    with pytest.raises(ProtectedError):  # a referenced blob cannot be deleted
        own_blob.delete()
    with django_capture_on_commit_callbacks(execute=True):  # stored files go once the deletion is committed
        result = purge.purge(now=_later(31))
    assert result["models"] == ["acme/doomed"]
    assert not Model.with_deleted.filter(pk=doomed.pk).exists()
    assert list(Blob.objects.values_list("sha256", flat=True)) == [sha256_of(shared)]
    assert result["blobs"] == [sha256_of(own)]
    assert not default_storage.exists(own_blob.storage_name)
    assert default_storage.exists(Blob.objects.get().storage_name)
    assert kept.versions.get().files.get().blob.sha256 == sha256_of(shared)
    assert AuditEvent.objects.filter(action="model.purged", target_id=str(doomed.uuid)).exists()


def test_a_restored_model_is_not_purged(catalog, two_models):
    doomed, _, _, _ = two_models
    services.soft_delete_model(model=doomed, actor=catalog.world.user("admin"))
    services.restore_model(model=doomed, actor=catalog.world.user("admin"))
    assert purge.purge(now=_later(365))["models"] == []
    assert Blob.objects.count() == 2


def test_a_fresh_unreferenced_blob_is_spared_for_a_grace_period(catalog):
    version = catalog.version(catalog.model("iris"), "0.1")
    catalog.add(version, "labels.txt", b"a\n")
    services.remove_file(version=version, actor=catalog.world.user("member"), path="labels.txt")
    assert purge.collect_unreferenced_blobs() == []
    assert purge.collect_unreferenced_blobs(now=timezone.now() + timedelta(hours=2)) == [sha256_of(b"a\n")]


def test_the_purge_job_kind_is_registered_for_admins():
    task = job_kinds()["marketplace.purge"]
    assert task.user_startable
    # Who may start it is an action on the organization (issue #13 item 19): "administer", its admins and owners.
    assert task.organization_action == "administer"


def test_an_admin_starts_the_purge_job_and_it_records_what_it_removed(catalog, two_models):
    doomed, _, _, own = two_models
    services.soft_delete_model(model=doomed, actor=catalog.world.user("admin"))
    Model.with_deleted.filter(pk=doomed.pk).update(purge_after=timezone.now() - timedelta(seconds=1))
    response = catalog.client("member").post(
        "/api/v1/jobs/", {"kind": "marketplace.purge", "organization": "acme"}, format="json"
    )
    assert response.status_code == 403
    response = catalog.client("admin").post(
        "/api/v1/jobs/", {"kind": "marketplace.purge", "organization": "acme"}, format="json"
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(uuid=response.json()["uuid"])
    job_kinds()["marketplace.purge"].run(job.pk)  # what the worker does with the message
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.result["models"] == ["acme/doomed"]
    assert not Blob.objects.filter(sha256=sha256_of(own)).exists()


def test_uploading_bytes_of_an_old_unreferenced_blob_again_saves_it_from_the_purge(catalog):
    version = catalog.version(catalog.model("iris"), "0.1")
    catalog.add(version, "labels.txt", b"a\n")
    services.remove_file(version=version, actor=catalog.world.user("member"), path="labels.txt")
    Blob.objects.update(referenced_at=timezone.now() - timedelta(days=2))
    # The same bytes arrive again; between storing them and adding the file, the purge runs.
    blob = storage.store_spooled(storage.spool_chunks([b"a\n"]))
    assert purge.collect_unreferenced_blobs() == []
    services.add_file(
        version=version,
        actor=catalog.world.user("member"),
        path="again.txt",
        spooled=None,
        uploaded=SimpleUploadedFile("again.txt", b"a\n"),
    )
    assert version.files.get().blob == blob
