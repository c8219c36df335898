"""Deleting a batch job's Job takes its stored rows, its results file and any parts a failed attempt left with it,
once the deletion is committed."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from apps.core.jobs import Job, JobStatus
from apps.inference.batch import part_name, start_batch_inference
from apps.inference.batch import worker as batch_worker
from apps.inference.batch_tasks import run_batch
from apps.inference.models import BatchInference
from tests.inference import onnx_models
from tests.inference.batch_support import iris_csv, iris_version, upload

pytestmark = pytest.mark.django_db


def started(runnable, world, tmp_path) -> Job:
    return start_batch_inference(
        version=iris_version(runnable, onnx_models.sklearn_iris_path(tmp_path)),
        uploaded=upload("iris.csv", iris_csv()),
        input_format=None,
        chunk_size=50,
        user=world.user("member"),
        organization=world.org,
    )


def test_a_deleted_job_takes_its_rows_and_results_files(runnable, world, tmp_path, django_capture_on_commit_callbacks):
    job = started(runnable, world, tmp_path)
    assert run_batch.run(job.pk) == JobStatus.SUCCEEDED
    batch = BatchInference.objects.get(job=job)
    stored = [batch.input_file.name, batch.output_file.name]
    assert all(default_storage.exists(name) for name in stored)

    with django_capture_on_commit_callbacks(execute=True):
        Job.objects.get(pk=job.pk).delete()
    assert not any(default_storage.exists(name) for name in stored)


def test_a_deleted_failed_job_takes_the_parts_it_left(
    runnable, world, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    job = started(runnable, world, tmp_path)
    real, calls = batch_worker.run_chunk, []

    def second_chunk_fails(loaded, rows, **kwargs):
        calls.append(rows[0].index)
        if len(calls) == 2:
            raise RuntimeError("the model server went away")
        return real(loaded, rows, **kwargs)

    monkeypatch.setattr(batch_worker, "run_chunk", second_chunk_fails)
    assert run_batch.run(job.pk) == JobStatus.FAILED
    part = part_name(job, 0, "csv")
    assert default_storage.exists(part)

    with django_capture_on_commit_callbacks(execute=True):
        Job.objects.get(pk=job.pk).delete()
    assert not default_storage.exists(part)
    assert not BatchInference.objects.filter(job_id=job.pk).exists()
