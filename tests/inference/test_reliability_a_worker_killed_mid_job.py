"""A worker killed with SIGKILL in the middle of a prediction loses nothing: the reaper re-queues the job, another
worker runs it again, and the job records one result, from its second attempt (real prefork workers on Redis)."""

from __future__ import annotations

import contextlib
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.db import connection

from apps.core.job_services import reap_stale_jobs, reaper_grace
from apps.core.jobs import Job, JobStatus
from apps.inference.models import InferenceJob
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.inference.edge_models import SLOW_MANIFEST, slow_model, slow_model_bytes, steps_for_seconds

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_performance_card(settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False


@pytest.fixture(scope="module")
def two_workers(inference_root, django_db_setup, django_db_blocker):
    """Two prefork workers on ``inference.cpu``, started side by side."""
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    with django_db_blocker.unblock():
        jobs_support.purge_broker()
        with ThreadPoolExecutor(2) as pool:
            workers = list(pool.map(lambda _: start_inference_worker(inference_root, queues=("inference.cpu",)), "ab"))
    yield workers
    for worker in workers:
        kill_with_its_pool(worker)  # nothing in hand matters now; a cold shutdown takes seconds
    with django_db_blocker.unblock():
        jobs_support.purge_broker()


def pool_processes(worker) -> list[int]:
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def kill_with_its_pool(worker) -> list[int]:
    """SIGKILL the worker and its pool processes at once, as a lost node or the kernel's OOM killer would."""
    children = pool_processes(worker)
    worker.kill()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return children


def expected_checksum(steps: int) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(slow_model().SerializeToString(), providers=["CPUExecutionProvider"])
    return float(session.run(None, {"steps": np.array([steps], dtype=np.int64)})[0][0])


def test_the_job_runs_again_elsewhere_and_records_one_result(runnable, two_workers, world):
    version = runnable.version(
        "slow",
        {"model.onnx": slow_model_bytes()},
        SLOW_MANIFEST,
    )
    steps = steps_for_seconds(1.5)
    client = api_client_for(world.user("member"))
    url = f"/api/v1/models/{world.org.slug}/{version.model.name}/versions/{version.label}/predict?async=1"
    response = client.post(url, {"inputs": {"steps": [steps]}}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(uuid=response.json()["job"])

    running = jobs_support.wait_for(jobs_support.job_in(job, JobStatus.RUNNING), timeout=30, what="the first attempt")
    assert running.attempts == 1
    first = jobs_support.wait_for(
        lambda: next((w for w in two_workers if "inference.predict[" in w.log()), None), what="the worker that took it"
    )
    (second,) = [worker for worker in two_workers if worker is not first]
    killed = kill_with_its_pool(first)
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING  # killed mid-run: nothing was recorded

    # The reaper's pass once the job's heartbeat is older than its time limit and the grace.
    later = running.heartbeat_at + timedelta(seconds=running.time_limit + reaper_grace() + 1)
    report = reap_stale_jobs(now=later)
    assert [reaped.pk for reaped in report.requeued] == [job.pk]

    done = jobs_support.wait_for(
        jobs_support.job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=60, what="the second attempt"
    )
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.attempts == 2
    inference = InferenceJob.objects.get(job=job)
    assert int(inference.worker.rsplit(":", 1)[1]) in pool_processes(second)
    assert int(inference.worker.rsplit(":", 1)[1]) not in killed

    answer = client.get(f"/api/v1/predictions/{job.uuid}/").json()
    assert answer["status"] == "succeeded"
    assert answer["outputs"]["checksum"] == pytest.approx([expected_checksum(steps)], rel=1e-5)
    assert done.result["outputs"] == {"checksum": {"dtype": "float32", "shape": [1]}}
    assert "inference.predict[" in second.log()
