"""A performance card measured on a real prefork worker (Celery on Redis), for the iris classifier and MiniLM: latency
p50 <= p95 at batch 1 and at the best batch size, a best batch size of at least 1, a positive throughput, the
memory loading took and the provider ONNX Runtime really used; the API answers the card and the page shows it.

The worker measures within a 2-second budget up to batch 32 (``INFERENCE_PERFORMANCE_*``), to keep the suite quick.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from apps.core.jobs import Job, JobStatus
from apps.inference.models import PerformanceCard
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def measuring_worker(inference_root, django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    with django_db_blocker.unblock():
        jobs_support.purge_broker()
        worker = start_inference_worker(
            inference_root,
            queues=("checks",),
            env={"INFERENCE_PERFORMANCE_BUDGET_SECONDS": "2", "INFERENCE_PERFORMANCE_MAX_BATCH": "32"},
        )
    yield worker
    worker.terminate()
    worker.wait_stopped()
    with django_db_blocker.unblock():
        jobs_support.purge_broker()


def performance_url(version) -> str:
    model = version.model
    return f"/api/v1/models/{model.organization.slug}/{model.name}/versions/{version.label}/performance"


def measured(world, version) -> PerformanceCard:
    """Ask for a card through the API (202 and a job) and wait for the worker to record it."""
    client = api_client_for(world.user("member"))
    assert client.get(performance_url(version)).status_code == 404  # not measured yet
    response = client.post(performance_url(version))
    assert response.status_code == 202, response.content
    job = Job.objects.get(uuid=response.json()["job"])
    assert response.json()["url"].endswith(f"/api/v1/jobs/{job.uuid}/")
    finished = jobs_support.wait_for(
        jobs_support.job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=90, what="the performance card"
    )
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    return PerformanceCard.objects.get(job=job)


def assert_sound(card: PerformanceCard) -> None:
    assert card.provider == "CPUExecutionProvider"
    assert card.device
    assert 0 < card.latency_p50_ms <= card.latency_p95_ms
    assert card.best_batch_size >= 1
    assert 0 < card.best_batch_p50_ms <= card.best_batch_p95_ms
    assert card.throughput > 0
    assert card.memory_mb >= 0
    sizes = card.details["sizes"]
    assert sizes[0]["batch_size"] == 1
    assert card.best_batch_size in [size["batch_size"] for size in sizes]
    assert card.throughput == pytest.approx(max(size["throughput"] for size in sizes), rel=1e-3)


def test_the_iris_classifier_is_measured_and_the_api_and_pages_show_it(runnable, world, tmp_path, measuring_worker):
    version = runnable.iris(tmp_path)
    card = measured(world, version)
    assert_sound(card)
    assert [size["batch_size"] for size in card.details["sizes"]][:2] == [1, 2]
    answer = api_client_for(world.user("viewer")).get(performance_url(version))
    assert answer.status_code == 200
    body = answer.json()
    assert body["provider"] == "CPUExecutionProvider"
    assert body["best_batch_size"] == card.best_batch_size
    assert body["latency_p50_ms"] == card.latency_p50_ms
    assert body["job"] == str(card.job.uuid)
    client = Client()
    client.force_login(world.user("viewer"))
    for path in ("", f"versions/{version.label}/"):
        html = client.get(f"/models/acme/{version.model.name}/{path}").content.decode()
        assert 'id="performance-card"' in html
        assert f'id="performance-best-batch">{card.best_batch_size}<' in html
        assert "<code>CPUExecutionProvider</code>" in html


def test_minilm_is_measured_at_sequence_length_32(runnable, world, measuring_worker):
    version = runnable.minilm()
    card = measured(world, version)
    assert_sound(card)
    assert card.details["sequence_length"] == 32
    assert card.details["largest_inputs"]["input_ids"][1] == 32
    assert card.memory_mb > 1  # a 23 MB int8 model: loading it grows the worker's resident memory
