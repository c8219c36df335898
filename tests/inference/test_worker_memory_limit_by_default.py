"""A worker that runs models has a memory limit without being told one: each pool process's address space is
held to the host's memory x ``INFERENCE_WORKER_MEMORY_FRACTION`` / the pool's processes (here the fraction is
chosen so that the limit is 3 GiB). A published model whose Expand asks for far more fails its job saying so, the
pool replaces the process and the next job runs; a run that stays under the limit but leaves ONNX Runtime's arena
holding gigabytes gives them back (the session cache counts what runs keep). Real prefork worker, real models.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.db import connection

from apps.inference.models import InferenceJob
from apps.inference.worker_memory import MINIMUM_MB, default_limit_mb, machine_memory_mb
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.inference.edge_models import EXPANDING_MANIFEST, expanding_model_bytes, iris_version

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

LIMIT_MB = 3072
SESSION_CACHE_MB = 256
EIGHT_GB = [2048, 1024, 1024]  # float32 elements
ONE_AND_A_HALF_GB = [384, 1024, 1024]


@pytest.fixture(autouse=True)
def no_performance_card(settings):
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    settings.INFERENCE_ONLINE_SERVING = False  # durable jobs: their rows name the process that ran them


@pytest.fixture(scope="module")
def unconfigured_worker(inference_root, django_db_setup, django_db_blocker):
    """A prefork worker on ``inference.cpu`` with no ``INFERENCE_WORKER_MEMORY_MB``: the default applies."""
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    configured = os.environ.pop("INFERENCE_WORKER_MEMORY_MB", None)
    fraction = (LIMIT_MB + 0.5) / machine_memory_mb()
    env = {"INFERENCE_WORKER_MEMORY_FRACTION": repr(fraction), "INFERENCE_SESSION_CACHE_MB": str(SESSION_CACHE_MB)}
    try:
        with django_db_blocker.unblock():
            jobs_support.purge_broker()
            worker = start_inference_worker(inference_root, env=env, queues=("inference.cpu",))
    finally:
        if configured is not None:
            os.environ["INFERENCE_WORKER_MEMORY_MB"] = configured
    yield worker
    for pid in pool_processes(worker):
        os.kill(pid, 9)
    worker.kill()
    with django_db_blocker.unblock():
        jobs_support.purge_broker()


def pool_processes(worker) -> list[int]:
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def address_space_limit(pid: int) -> tuple[str, str]:
    limits = Path(f"/proc/{pid}/limits").read_text()
    soft, hard = re.search(r"^Max address space\s+(\S+)\s+(\S+)", limits, re.M).groups()
    return soft, hard


def resident_mb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) // 1024


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def test_the_default_is_half_the_hosts_memory_shared_by_the_pools_processes():
    assert default_limit_mb(memory_mb=16384, processes=1, fraction=0.5) == 8192
    assert default_limit_mb(memory_mb=16384, processes=4, fraction=0.5) == 2048
    assert default_limit_mb(memory_mb=2048, processes=4, fraction=0.5) == MINIMUM_MB  # never below the floor
    assert 0 < machine_memory_mb() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


def test_a_worker_without_a_configured_limit_holds_its_pool_process_to_the_default(unconfigured_worker):
    (process,) = pool_processes(unconfigured_worker)

    # The pool process sets its limit as it starts (worker_process_init), which may come just after the worker says
    # it is ready: a full run once read the limit before (soft "unlimited").
    soft, hard = jobs_support.wait_for(
        lambda: (limits := address_space_limit(process))[0] != "unlimited" and limits,
        timeout=30,
        what="the pool process to set its address-space limit",
    )

    assert int(soft) == LIMIT_MB * 2**20
    assert hard == "unlimited"  # the validation job's child process may set its own


def test_an_expand_far_past_the_limit_fails_saying_so_and_the_next_job_runs(runnable, unconfigured_worker, world):
    (first_process,) = pool_processes(unconfigured_worker)
    expander = runnable.version("expander", {"model.onnx": expanding_model_bytes()}, EXPANDING_MANIFEST)
    client = api_client_for(world.user("member"))

    response = client.post(predict_url(expander), {"inputs": {"shape": EIGHT_GB}}, format="json")

    assert response.status_code == 422, response.content
    assert f"needed more memory than the worker's limit of {LIMIT_MB} MiB" in response.json()["detail"]
    jobs_support.wait_for(
        lambda: pool_processes(unconfigured_worker) not in ([], [first_process]),
        timeout=30,
        what="the pool to start a new process",
    )
    iris = iris_version(runnable)
    response = client.post(predict_url(iris), {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["outputs"]["label"] == [0]
    (new_process,) = pool_processes(unconfigured_worker)
    assert new_process != first_process
    assert InferenceJob.objects.get(version=iris).worker.endswith(f":{new_process}")


def test_a_run_under_the_limit_that_leaves_gigabytes_in_the_arena_gives_them_back(runnable, unconfigured_worker, world):
    expander = runnable.version("expander-two", {"model.onnx": expanding_model_bytes()}, EXPANDING_MANIFEST)
    client = api_client_for(world.user("member"))

    response = client.post(predict_url(expander), {"inputs": {"shape": ONE_AND_A_HALF_GB}}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["outputs"]["peak"] == [1.0]
    process = int(InferenceJob.objects.get(version=expander).worker.rsplit(":", 1)[1])
    assert pool_processes(unconfigured_worker) == [process]  # the same process goes on
    # The arena kept 1.5 GiB after the run; the session past the 256 MiB cache was dropped with it, and the memory
    # went back once the task let go of the session (the answer is sent a moment before).
    jobs_support.wait_for(lambda: resident_mb(process) < 1024, timeout=20, what="the arena's memory to go back")
    again = client.post(predict_url(expander), {"inputs": {"shape": [2, 3, 4]}}, format="json")
    assert again.status_code == 200 and again.json()["outputs"]["peak"] == [1.0]
