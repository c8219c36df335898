"""The validation job, end to end through the job machinery (claim, execute, record), run synchronously.

Adding a model file starts the job (``services.add_file`` -> ``start_validation``); the test then runs the
task's ``run(job_id)`` in this process, as a worker would after taking the message: the same claim, the same
child process, the same recording. The broker is left out here; tests/marketplace/test_validation_worker.py
runs one validation through a real Celery worker.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.core.jobs import Job, JobStatus
from apps.marketplace import services
from apps.marketplace.models import ModelVersion, ValidationStatus, VersionStatus
from apps.marketplace.tasks import validate_version
from apps.marketplace.validation import VALIDATE_JOB_KIND, start_validation
from tests.marketplace.onnx_fixtures import external_data_model, iris_path, minilm_path, random_bytes

pytestmark = pytest.mark.django_db


def run_job(version: ModelVersion) -> Job:
    version.refresh_from_db()
    validate_version.run(version.validation_job_id)
    version.refresh_from_db()
    return Job.objects.get(pk=version.validation_job_id)


def validated_events(version: ModelVersion):
    return AuditEvent.objects.filter(action="version.validated", target_id=str(version.uuid))


def test_adding_a_model_file_starts_a_validation_job_and_marks_the_version_pending(catalog):
    version = catalog.version(catalog.model())

    catalog.add(version, "model.onnx", iris_path().read_bytes())

    version.refresh_from_db()
    job = version.validation_job
    assert version.validation_status == ValidationStatus.PENDING
    assert job.kind == VALIDATE_JOB_KIND
    assert job.status == JobStatus.QUEUED
    assert job.queue == "checks"
    assert job.creator == catalog.world.user("member")
    assert job.params["version"] == str(version.uuid)
    assert job.params["main_file"] == "model.onnx"
    assert job.params["files"] == [["model.onnx", version.files.get().blob.sha256]]


def test_a_valid_model_passes_and_its_signature_facts_and_task_are_stored(catalog):
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", iris_path().read_bytes())

    job = run_job(version)

    assert job.status == JobStatus.SUCCEEDED
    assert job.result["outcome"] == "passed"
    assert version.validation_status == ValidationStatus.PASSED
    assert version.validation_message == ""
    assert version.status == VersionStatus.DRAFT
    assert version.signature["inputs"] == [{"name": "float_input", "elem_type": "float32", "shape": [3, 2]}]
    assert version.onnx_info["ir_version"] == 3
    assert version.onnx_info["checks"]["onnxruntime"] == "passed"
    assert version.detected_task == "tabular-classification"
    event = validated_events(version).get()
    assert event.metadata["outcome"] == "passed"
    assert event.actor_id == catalog.world.user("member").pk
    services.publish_version(version=version, actor=catalog.world.user("member"))  # now allowed


def test_random_bytes_fail_with_a_message_and_the_version_stays_a_draft(catalog):
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", random_bytes())

    job = run_job(version)

    assert job.status == JobStatus.SUCCEEDED  # the job did its work; the model failed
    assert job.result["outcome"] == "failed"
    assert version.validation_status == ValidationStatus.FAILED
    assert version.validation_message.startswith("The file is not an ONNX model")
    assert version.status == VersionStatus.DRAFT
    assert version.signature == {}
    assert version.detected_task == ""
    assert validated_events(version).get().metadata["outcome"] == "failed"
    with pytest.raises(ValidationError) as refused:
        services.publish_version(version=version, actor=catalog.world.user("member"))
    assert "validation failed: The file is not an ONNX model" in str(refused.value.message_dict["validation_status"])


def test_external_data_stored_beside_the_model_resolves_after_the_files_are_fetched(catalog, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    external_data_model(source, location="model.onnx.data")
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx.data", (source / "model.onnx.data").read_bytes())
    catalog.add(version, "model.onnx", (source / "model.onnx").read_bytes())

    run_job(version)

    assert version.validation_status == ValidationStatus.PASSED, version.validation_message
    assert version.onnx_info["external_data_files"] == ["model.onnx.data"]


def test_external_data_missing_from_the_version_fails_with_its_name(catalog, tmp_path):
    external_data_model(tmp_path, location="weights.bin", write_data=False)
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", (tmp_path / "model.onnx").read_bytes())

    run_job(version)

    assert version.validation_status == ValidationStatus.FAILED
    assert version.validation_message == (
        "The external data of the initializer “w” (the graph) “weights.bin” is missing from the version."
    )


def test_a_job_run_twice_records_one_result(catalog):
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", iris_path().read_bytes())
    job = run_job(version)
    # The message is delivered again (a redelivery, or the reaper re-queued it): the job runs a second time.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)

    validate_version.run(job.pk)

    job.refresh_from_db()
    assert job.result["outcome"] == "skipped"
    assert validated_events(version).count() == 1
    version.refresh_from_db()
    assert version.validation_status == ValidationStatus.PASSED


def test_a_validation_overtaken_by_new_files_records_nothing(catalog):
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", random_bytes())
    version.refresh_from_db()
    first_job = version.validation_job
    catalog.add(version, "labels.txt", b"setosa\nversicolor\nvirginica\n")  # starts a second validation

    validate_version.run(first_job.pk)

    first_job.refresh_from_db()
    assert first_job.result["outcome"] == "skipped"
    version.refresh_from_db()
    assert version.validation_status == ValidationStatus.PENDING
    assert validated_events(version).count() == 0
    run_job(version)
    assert version.validation_status == ValidationStatus.FAILED


def test_tags_decide_the_task_when_they_name_one(catalog):
    version = catalog.version(catalog.model("minilm", tags=["sentence-similarity"]))
    catalog.add(version, "model.onnx", minilm_path().read_bytes())

    run_job(version)

    assert version.validation_status == ValidationStatus.PASSED, version.validation_message
    assert version.detected_task == "sentence-similarity"
    assert version.signature["outputs"][0]["shape"] == ["batch", "sequence", 384]


def test_a_version_without_a_model_file_is_not_validated(catalog):
    version = catalog.version(catalog.model())
    catalog.add(version, "labels.txt", b"a\nb\n")

    with pytest.raises(ValidationError) as refused:
        start_validation(version=version, actor=catalog.world.user("member"))

    assert refused.value.message_dict == {
        "files": ["Version “1.0.0” has no ONNX model file (e.g. “model.onnx”) to validate."]
    }
    version.refresh_from_db()
    assert version.validation_status == ValidationStatus.NONE


def test_a_published_version_is_not_validated_again(catalog):
    version = catalog.published(catalog.model())

    with pytest.raises(ValidationError) as refused:
        start_validation(version=version, actor=catalog.world.user("member"))

    assert refused.value.message_dict == {"status": ["Version “1.0.0” is published: only drafts are validated."]}


def test_a_version_whose_stored_bytes_vanished_fails_with_a_message(catalog):
    from django.core.files.storage import default_storage

    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", iris_path().read_bytes())
    default_storage.delete(version.files.get().blob.storage_name)

    run_job(version)

    assert version.validation_status == ValidationStatus.FAILED
    assert version.validation_message == (
        "validation could not fetch the version's files: The stored bytes of “model.onnx” are missing from storage."
    )


def test_the_copies_made_for_checking_are_removed_afterwards(catalog, settings):
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", iris_path().read_bytes())

    run_job(version)

    work = settings.MARKETPLACE_UPLOAD_DIR / "validation"
    assert work.is_dir() and list(work.iterdir()) == []
