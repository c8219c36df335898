"""Jobs that fail on a real prefork worker record why, once, and the synchronous API answers with that reason:

* text sent to a model without a tokenizer is refused by the worker's pre-processing: 400 naming ``inputs.text``,
  the job failed with ``error_fields``;
* a version ONNX Runtime cannot load (it passed validation: the graph reads, but its op is of a domain no runtime
  knows): 422 with ONNX Runtime's own reason;
* outputs over ``INFERENCE_MAX_OUTPUT_BYTES`` (1,000 bytes in this worker's environment): 422 with both sizes;
* a run past its time limit (the deployment's ``timeout_seconds``) is stopped through ONNX Runtime's terminate
  flag: 422 "ran past its time limit", and the same process runs the next job;
* an allocation past the worker's memory limit (``INFERENCE_WORKER_MEMORY_MB``, an RLIMIT_AS in each pool process):
  422 with the limit, and the pool replaces the process, so the next job runs in a new one.

None of them is retried: one attempt each, still failed after the reaper ran. The module shares one worker. These are
durable predictions (the job records the outcome); test_online_failures_on_the_worker_say_why.py has the online ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.job_services import reap_stale_jobs, reaper_grace
from apps.core.jobs import Job, JobStatus
from apps.inference import services
from apps.inference.models import InferenceJob
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.inference.edge_models import (
    ALLOCATING_MANIFEST,
    SLOW_MANIFEST,
    UNKNOWN_DOMAIN,
    UNKNOWN_OP,
    UNLOADABLE_MANIFEST,
    allocating_model_bytes,
    iris_version,
    slow_model_bytes,
    steps_for_seconds,
    unloadable_model_bytes,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# A pool process of this worker holds ~0.4-0.6 GiB of address space with ONNX Runtime and MiniLM loaded (checked
# in the memory test, before the limit matters); 1.5 GiB leaves it room and refuses the 20 GB asked for below.
MEMORY_LIMIT_MB = 1536
OUTPUT_LIMIT = 1000
TWENTY_GB = [5000, 1000, 1000]  # float32 elements


@pytest.fixture(autouse=True)
def no_performance_card(settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    settings.INFERENCE_ONLINE_SERVING = False  # the durable path: a job that records why


@pytest.fixture(scope="module")
def limited_worker(inference_root, django_db_setup, django_db_blocker):
    """A prefork worker on ``inference.cpu`` with a memory limit and an output cap of its own."""
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    env = {"INFERENCE_WORKER_MEMORY_MB": str(MEMORY_LIMIT_MB), "INFERENCE_MAX_OUTPUT_BYTES": str(OUTPUT_LIMIT)}
    with django_db_blocker.unblock():
        jobs_support.purge_broker()
        worker = start_inference_worker(inference_root, env=env, queues=("inference.cpu",))
    yield worker
    kill_with_its_pool(worker)  # nothing in hand matters now; a cold shutdown takes seconds
    with django_db_blocker.unblock():
        jobs_support.purge_broker()


def pool_processes(worker) -> list[int]:
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def kill_with_its_pool(worker) -> None:
    children = pool_processes(worker)
    worker.kill()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def address_space_mb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmSize:\s+(\d+) kB", status, re.M).group(1)) // 1024


def version_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def the_job_of(version) -> InferenceJob:
    return InferenceJob.objects.select_related("job").get(version=version)


def assert_failed_once_even_after_the_reaper(job: Job) -> None:
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    reap_stale_jobs(now=timezone.now() + timedelta(seconds=job.time_limit + reaper_grace() + 60))
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)


def test_text_to_a_model_without_a_tokenizer_answers_400_and_the_job_records_the_field(runnable, limited_worker, world):
    version = iris_version(runnable)
    client = api_client_for(world.user("member"))
    response = client.post(version_url(version), {"inputs": {"text": "a flower with long petals"}}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["inputs.text"][0]

    inference = the_job_of(version)
    assert inference.error_fields["inputs.text"] == body["inputs.text"]
    assert "inputs.text" in inference.job.error
    assert_failed_once_even_after_the_reaper(inference.job)
    detail = client.get(f"/api/v1/predictions/{inference.job.uuid}/").json()
    assert (detail["status"], detail["errors"]["inputs.text"]) == ("failed", body["inputs.text"])


def test_a_model_that_fails_to_load_answers_422_with_onnx_runtimes_reason(runnable, limited_worker, world):
    version = runnable.version(
        "frobnicator",
        {"model.onnx": unloadable_model_bytes()},
        UNLOADABLE_MANIFEST,
    )
    client = api_client_for(world.user("member"))
    response = client.post(version_url(version), {"inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}, format="json")
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert response.json()["code"] == "prediction_failed"
    assert "ONNX Runtime could not load the model" in detail
    assert f"{UNKNOWN_DOMAIN}:{UNKNOWN_OP}" in detail and "is not a registered function/op" in detail

    inference = the_job_of(version)
    assert inference.job.error == detail
    assert "ModelLoadError" in inference.job.traceback
    assert not inference.error_fields  # not the input's fault: no 400
    assert inference.worker  # host:pid of the process that tried
    assert_failed_once_even_after_the_reaper(inference.job)
    answer = client.get(f"/api/v1/predictions/{inference.job.uuid}/").json()
    assert (answer["status"], answer["error"]) == ("failed", detail)
    assert "outputs" not in answer


def test_outputs_over_the_cap_fail_with_how_many_bytes_and_the_limit(runnable, limited_worker, world):
    version = runnable.minilm()
    client = api_client_for(world.user("member"))
    response = client.post(version_url(version), {"inputs": {"text": "I play the guitar."}}, format="json")
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    found = re.search(r"returned ([\d,]+) bytes of output; the limit is 1,000 bytes", detail)
    assert found, detail
    returned = int(found.group(1).replace(",", ""))
    assert returned > OUTPUT_LIMIT
    assert returned % (384 * 4) == 0  # last_hidden_state [1, tokens, 384] float32: what MiniLM really returned

    inference = the_job_of(version)
    assert inference.job.error == detail
    assert not inference.outputs
    assert_failed_once_even_after_the_reaper(inference.job)


def test_a_run_past_its_time_limit_is_stopped_and_the_process_runs_the_next_job(runnable, limited_worker, world):
    version = runnable.version(
        "slow",
        {"model.onnx": slow_model_bytes()},
        SLOW_MANIFEST,
    )
    deployment = services.create_deployment(
        organization=world.org,
        model=version.model,
        actor=world.user("member"),
        slug="slow",
        version=version,
        timeout_seconds=1,
        max_batch_size=1,
    )
    client = api_client_for(world.user("member"))
    url = f"/api/v1/orgs/{world.org.slug}/deployments/{deployment.slug}/predict"

    response = client.post(url, {"inputs": {"steps": [steps_for_seconds(6)]}}, format="json")  # 6 s of work
    assert response.status_code == 422, response.content
    assert "ran past its time limit of 1 s" in response.json()["detail"]
    stopped = the_job_of(version)
    assert "ran past its time limit of 1 s and was stopped" in stopped.job.error
    assert_failed_once_even_after_the_reaper(stopped.job)

    response = client.post(url, {"inputs": {"steps": [5]}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "succeeded"
    following = InferenceJob.objects.select_related("job").exclude(pk=stopped.pk).get(version=version)
    assert following.job.status == JobStatus.SUCCEEDED
    assert following.worker == stopped.worker  # the same process: stopping a run does not cost the process


def test_an_allocation_past_the_memory_limit_fails_once_and_the_pool_replaces_the_process(
    runnable, limited_worker, world
):
    (first_process,) = pool_processes(limited_worker)
    assert address_space_mb(first_process) < MEMORY_LIMIT_MB  # the limit leaves the process itself room
    version = runnable.version(
        "allocator",
        {"model.onnx": allocating_model_bytes()},
        ALLOCATING_MANIFEST,
    )
    client = api_client_for(world.user("member"))

    response = client.post(version_url(version), {"inputs": {"shape": TWENTY_GB}}, format="json")
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert f"needed more memory than the worker's limit of {MEMORY_LIMIT_MB} MiB" in detail
    assert "not retried" in detail
    failed = the_job_of(version)
    assert failed.job.error == detail
    assert "Failed to allocate memory" in failed.job.traceback  # ONNX Runtime's own words, kept for operators
    assert failed.worker.endswith(f":{first_process}")

    # The process left the pool and a new one took its place; the message it held came back, found the job
    # already failed and did nothing.
    jobs_support.wait_for(
        lambda: pool_processes(limited_worker) not in ([], [first_process]),
        timeout=30,
        what="the pool to start a new process",
    )
    assert f"pid:{first_process} exited with 'exitcode 70'" in limited_worker.log()
    jobs_support.wait_for(lambda: "'skipped'" in limited_worker.log(), timeout=30, what="the redelivery to be skipped")
    assert_failed_once_even_after_the_reaper(Job.objects.get(pk=failed.job.pk))

    response = client.post(version_url(version), {"inputs": {"shape": [2, 3, 4]}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["outputs"]["total"] == [24.0]
    (new_process,) = pool_processes(limited_worker)
    assert new_process != first_process
    assert InferenceJob.objects.exclude(pk=failed.pk).get(version=version).worker.endswith(f":{new_process}")
