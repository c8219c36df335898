"""A worker killed with SIGKILL mid batch job: the reaper re-sends the job, a second worker resumes it at
``rows_done`` and the results file has every row exactly once.

The first worker is slowed by the batch task's test hook (``GPUX_BATCH_CHUNK_DELAY_SECONDS``, a pause before each
chunk) so that the kill lands mid-job; it and its pool process are killed by their pids, as an OOM kill or a lost
node would end them: no warm shutdown, nothing acknowledged.
"""

from __future__ import annotations

import contextlib
import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from apps.core.job_services import reap_stale_jobs, reaper_grace
from apps.core.jobs import Job, JobStatus
from apps.inference.batch import CHUNK_DELAY_ENV
from apps.inference.models import BatchInference
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference import onnx_models
from tests.inference.batch_support import (
    accuracy,
    batch_url,
    body_of,
    iris_csv,
    iris_data,
    iris_version,
    jsonl_records,
    results_url,
    upload,
)
from tests.inference.conftest import start_inference_worker
from tests.jobs_support import job_in, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHUNK = 5  # 150 rows: 30 chunks, a quarter of a second each on the slowed worker


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (the worker's pool processes), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (name) state ppid ...": the name may hold spaces, so read after its closing parenthesis
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def kill_with_its_pool(worker: jobs_support.WorkerProcess) -> None:
    """SIGKILL the worker and then its pool processes (the parent first, so it cannot hand the message back)."""
    pool = children_of(worker.pid)
    worker.kill()
    for pid in pool:
        with contextlib.suppress(ProcessLookupError):  # it may have gone with its parent
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def workers(inference_root):
    started: list[jobs_support.WorkerProcess] = []
    jobs_support.purge_broker()

    def start(**env: str) -> jobs_support.WorkerProcess:
        started.append(start_inference_worker(inference_root, env=env))
        return started[-1]

    yield start
    for worker in started:
        worker.terminate()
    for worker in started:
        worker.wait_stopped()
    jobs_support.purge_broker()


def test_a_batch_job_whose_worker_is_killed_resumes_on_another_and_writes_every_row_once(
    runnable, world, workers, tmp_path
):
    version = iris_version(runnable, onnx_models.sklearn_iris_path(tmp_path))
    slow = workers(**{CHUNK_DELAY_ENV: "0.25"})
    client = api_client_for(world.user("member"))
    response = client.post(
        batch_url(version), {"file": upload("iris.csv", iris_csv()), "chunk_size": CHUNK}, format="multipart"
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(uuid=response.json()["job"])

    wait_for(
        lambda: BatchInference.objects.filter(job=job, rows_done__gte=2 * CHUNK).exists(),
        timeout=60,
        what="two chunks done",
    )
    kill_with_its_pool(slow)
    stale = Job.objects.get(pk=job.pk)
    at_kill = BatchInference.objects.get(job=job).rows_done
    assert (stale.status, stale.attempts) == (JobStatus.RUNNING, 1)
    assert 2 * CHUNK <= at_kill < 150 and 0 < stale.progress < 1

    # The partial results are there to download while the job waits to be resumed.
    partial = client.get(results_url(job.uuid))
    assert partial.status_code == 200 and partial["X-Results-Complete"] == "false"
    assert [record["row"] for record in jsonl_records(body_of(partial))] == list(range(at_kill))

    assert reap_stale_jobs().requeued == []  # within its time limit plus grace the worker might still be alive
    later = stale.heartbeat_at + timedelta(seconds=stale.time_limit + reaper_grace() + 1)
    assert [reaped.pk for reaped in reap_stale_jobs(now=later).requeued] == [job.pk]
    workers()

    done = wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=90, what="the second attempt")
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.attempts == 2
    assert done.result["started_at_row"] == at_kill  # resumed where the killed attempt stopped, not from row 0
    batch = BatchInference.objects.get(job=job)
    assert (batch.rows_done, batch.rows_failed) == (150, 0)
    records = jsonl_records(body_of(client.get(results_url(job.uuid))))
    assert [record["row"] for record in records] == list(range(150))
    _features, labels = iris_data()
    assert accuracy(records, labels) > 0.9
