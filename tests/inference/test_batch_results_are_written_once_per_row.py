"""A batch job resumes at ``rows_done`` and never writes a row twice: the task run here in the test process (the
worker's code, claim included) is stopped the way a SIGKILL stops a worker, after a chunk's results were written
and before its ``rows_done`` was saved; the reaper re-queues the job and the next attempt finishes it. A job that
fails, or is cancelled, keeps the results of the chunks it finished, and they can be downloaded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage

from apps.core.job_services import cancel_job, reap_stale_jobs, reaper_grace
from apps.core.jobs import Job, JobStatus
from apps.inference.batch import part_name, start_batch_inference
from apps.inference.batch import worker as batch_worker
from apps.inference.batch_tasks import run_batch
from apps.inference.models import BatchInference
from tests.conftest import api_client_for
from tests.inference import onnx_models
from tests.inference.batch_support import body_of, iris_csv, iris_version, jsonl_records, results_url, upload

pytestmark = pytest.mark.django_db

CHUNK = 16  # 150 iris rows: 10 chunks, the last of 6


class WorkerKilled(BaseException):
    """What a SIGKILL leaves: nothing after this point runs, nothing is recorded (not an Exception: the task's
    failure handling must not see it)."""


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    return onnx_models.sklearn_iris_path(tmp_path_factory.mktemp("iris"))


def start(runnable, world, iris_model) -> Job:
    version = iris_version(runnable, iris_model)
    return start_batch_inference(
        version=version,
        uploaded=upload("iris.csv", iris_csv()),
        input_format=None,
        chunk_size=CHUNK,
        user=world.user("member"),
        organization=world.org,
    )


def stop_at_commit(monkeypatch, number: int, action) -> list[int]:
    """Run ``action`` instead of saving ``rows_done`` the ``number``-th time (its part is already written)."""
    calls: list[int] = []
    real = batch_worker._commit_chunk

    def commit(job, batch, **kwargs):
        calls.append(kwargs["rows_done"])
        if len(calls) == number:
            action(job)
        return real(job, batch, **kwargs)

    monkeypatch.setattr(batch_worker, "_commit_chunk", commit)
    return calls


def kill(job) -> None:
    raise WorkerKilled


def test_an_attempt_killed_between_a_part_and_its_rows_done_is_resumed_and_writes_each_row_once(
    runnable, world, iris_model, monkeypatch
):
    job = start(runnable, world, iris_model)
    stop_at_commit(monkeypatch, 3, kill)
    with pytest.raises(WorkerKilled):
        run_batch.run(job.pk)

    stale = Job.objects.get(pk=job.pk)
    batch = BatchInference.objects.get(job=job)
    assert (stale.status, stale.attempts, batch.rows_done) == (JobStatus.RUNNING, 1, 2 * CHUNK)
    assert default_storage.exists(part_name(job, 2, "csv"))  # written, never counted

    later = stale.heartbeat_at + timedelta(seconds=stale.time_limit + reaper_grace() + 1)
    assert [reaped.pk for reaped in reap_stale_jobs(now=later).requeued] == [job.pk]
    resumed_at = stop_at_commit(monkeypatch, 0, kill)
    assert run_batch.run(job.pk) == JobStatus.SUCCEEDED

    done = Job.objects.get(pk=job.pk)
    batch.refresh_from_db()
    assert (done.attempts, batch.rows_done, batch.rows_failed) == (2, 150, 0)
    assert resumed_at[0] == 3 * CHUNK  # the second attempt's first chunk was the one the first did not count
    assert done.result["rows_done"] == 150 and done.result["provider"] == "CPUExecutionProvider"
    records = jsonl_records(batch.output_file.read())
    assert [record["row"] for record in records] == list(range(150))
    assert not default_storage.exists(part_name(job, 0, "csv"))  # joined into the results file, then removed


def test_a_job_that_fails_mid_way_keeps_and_serves_the_rows_it_finished(runnable, world, iris_model, monkeypatch):
    job = start(runnable, world, iris_model)
    calls = {"chunks": 0}
    real = batch_worker.run_chunk

    def failing_chunk(loaded, rows, **kwargs):
        calls["chunks"] += 1
        if calls["chunks"] == 4:
            raise RuntimeError("the scratch disk is full")
        return real(loaded, rows, **kwargs)

    monkeypatch.setattr(batch_worker, "run_chunk", failing_chunk)
    assert run_batch.run(job.pk) == JobStatus.FAILED

    failed = Job.objects.get(pk=job.pk)
    assert "the scratch disk is full" in failed.error
    response = api_client_for(world.user("member")).get(results_url(job.uuid))
    assert response.status_code == 200
    assert response["X-Rows-Done"] == str(3 * CHUNK) and response["X-Results-Complete"] == "false"
    records = jsonl_records(body_of(response))
    assert [record["row"] for record in records] == list(range(3 * CHUNK))
    assert records[0]["answer"]["predictions"][0]["label"] == "setosa"  # sklearn's first iris row is a setosa


def test_a_cancelled_job_stops_at_its_next_chunk_and_records_nothing_more(runnable, world, iris_model, monkeypatch):
    job = start(runnable, world, iris_model)
    stop_at_commit(monkeypatch, 2, lambda running: cancel_job(job=running, actor=world.user("member")))
    assert run_batch.run(job.pk) == "lost"

    cancelled = Job.objects.get(pk=job.pk)
    assert cancelled.status == JobStatus.CANCELLED
    assert BatchInference.objects.get(job=job).rows_done == CHUNK
