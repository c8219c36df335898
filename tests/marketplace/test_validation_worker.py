"""One validation through a real Celery worker: upload, commit, broker, worker, child process, outcome.

Uses the in-thread worker of the job tests (tests/core/conftest.py), which needs Redis as the broker; the
test is skipped without REDIS_URL. The other validation tests run the same task synchronously.
"""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.core.jobs import Job, JobStatus
from apps.marketplace.models import ModelVersion, ValidationStatus
from tests.core.conftest import _thread_worker, job_worker, media_root  # noqa: F401 - fixtures
from tests.jobs_support import job_in, wait_for
from tests.marketplace.onnx_fixtures import minilm_path, random_bytes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("job_worker")]


def test_a_worker_validates_an_uploaded_model_and_records_the_outcome(catalog):
    version = catalog.version(catalog.model("minilm"))

    catalog.add(version, "model.onnx", minilm_path().read_bytes())  # commits: the job's message is sent

    version.refresh_from_db()
    job = wait_for(job_in(version.validation_job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=120, what="the job")
    version.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["outcome"] == "passed"
    assert version.validation_status == ValidationStatus.PASSED
    assert version.detected_task == "feature-extraction"
    assert AuditEvent.objects.filter(action="version.validated", target_id=str(version.uuid)).count() == 1


def test_a_worker_survives_a_hostile_file_and_reports_it(catalog, settings):
    settings.ONNX_VALIDATION_TIMEOUT_S = 60
    version = catalog.version(catalog.model("junk"))

    catalog.add(version, "model.onnx", random_bytes())

    version.refresh_from_db()
    job = wait_for(job_in(version.validation_job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=120, what="the job")
    version = ModelVersion.objects.get(pk=version.pk)
    assert job.status == JobStatus.SUCCEEDED
    assert version.validation_status == ValidationStatus.FAILED
    assert version.validation_message.startswith("The file is not an ONNX model")
    # The same worker goes on to the next job.
    other = catalog.version(catalog.model("minilm"))
    catalog.add(other, "model.onnx", minilm_path().read_bytes())
    other.refresh_from_db()
    done = wait_for(job_in(other.validation_job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=120, what="the job")
    assert Job.objects.get(pk=done.pk).result["outcome"] == "passed"
