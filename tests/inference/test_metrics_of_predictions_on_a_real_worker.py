"""Predictions on a real inference worker (prefork) with a metrics port: their latency by model, version, deployment,
the provider ONNX Runtime really used and the batch size; the fill of a batching deployment's merged batches; the
worker up for inference.cpu on the web's /metrics, with a snapshot of its metrics in its heartbeat."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from apps.core import metrics
from apps.inference import services
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.metrics_support import TOKEN, free_port, scrape_url, scrape_web

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def metrics_worker(inference_root, django_db_setup, django_db_blocker):
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    port = free_port()
    with django_db_blocker.unblock():
        jobs_support.purge_broker()
        worker = start_inference_worker(
            inference_root,
            prefetch=64,
            env={
                "GPUX_WORKER_METRICS_PORT": str(port),
                "GPUX_METRICS_DIR": str(inference_root / "metrics"),
                "METRICS_BEARER_TOKEN": TOKEN,
                "WORKER_HEARTBEAT_SECONDS": "1",
            },
        )
    yield worker, f"http://127.0.0.1:{port}/metrics"
    worker.terminate()
    worker.wait_stopped()
    with django_db_blocker.unblock():
        jobs_support.purge_broker()


def _predict(client, url: str, row: list[float]) -> dict:
    try:
        response = client.post(url, {"inputs": {"float_input": [row]}}, format="json")
        assert response.status_code == 200, response.content
        return response.json()
    finally:
        connection.close()


def test_prediction_latency_and_batch_fill_are_labelled_by_what_ran(runnable, metrics_worker, world, tmp_path):
    worker, url = metrics_worker
    version = runnable.iris(tmp_path)
    deployment = services.create_deployment(
        organization=world.org,
        model=version.model,
        actor=world.user("member"),
        slug="flowers",
        version=version,
        max_batch_size=8,
        max_delay_ms=200,
    )
    client = api_client_for(world.user("member"))
    predict = f"/api/v1/orgs/acme/deployments/{deployment.slug}/predict"
    rows = [[6.7, 3.0, 5.2, 2.3], [5.1, 3.5, 1.4, 0.2]] * 4
    with ThreadPoolExecutor(max_workers=len(rows)) as pool:
        answers = list(pool.map(lambda row: _predict(client, predict, row), rows))
    provider = answers[0]["provider"]
    assert provider == "CPUExecutionProvider"
    answers.append(_predict(client, predict, rows[0]))  # alone, after the others: the loaded session is reused
    rows.append(rows[0])

    latency = "gpux_inference_latency_seconds_count"
    scraped = jobs_support.wait_for(
        lambda: (s := scrape_url(url)).value(latency, model="acme/iris") >= len(rows) and s,
        timeout=20,
        what="the predictions in the worker's metrics",
    )
    series = scraped.find(latency, model="acme/iris", version="1.0.0", deployment="acme/flowers", provider=provider)
    assert sum(s.value for s in series) == len(rows)
    sizes = {s.labels["batch_size"] for s in series}
    assert sizes <= {metrics.batch_size_label(a["batch_size"]) for a in answers}, sizes
    assert scraped.value("gpux_inference_batch_fill_ratio_count", deployment="acme/flowers") >= 1
    fill = scraped.value("gpux_inference_batch_fill_ratio_sum", deployment="acme/flowers")
    assert 0 < fill <= scraped.value("gpux_inference_batch_fill_ratio_count", deployment="acme/flowers")
    # Served online (apps/inference/online/): latency and batch fill as for jobs, and no job outcome.
    assert scraped.value("gpux_job_outcomes_total", kind="inference.predict_batched", outcome="succeeded") == 0
    # The worker's session cache: the model loaded once (a miss), later batches found it (hits).
    assert scraped.value("gpux_inference_session_cache_total", result="miss") >= 1
    assert scraped.value("gpux_inference_session_cache_total", result="hit") >= 1

    def heartbeat_with_the_predictions():
        mine = [r for r in metrics.live_workers() if r["name"].startswith(worker.name)]
        latency = mine[0]["metrics"].get("gpux_inference_latency_seconds", {}) if mine else {}
        return latency.get("series", {}).get("acme/iris", {}).get("count") == len(rows) and mine[0]

    record = jobs_support.wait_for(heartbeat_with_the_predictions, timeout=20, what="the worker's heartbeat")
    assert record["queues"] == ["inference.cpu"]
    assert scrape_web(Client()).value("gpux_workers_up", queue="inference.cpu") >= 1
