"""A worker process SIGKILLed while it runs an online batch: its callers answer 503 with ``Retry-After`` within
seconds (their loop stopped beating), not at their timeout and never a hang; the pool's replacement serves the next
requests; each request is recorded once (online serving is at most once: the client retries)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from apps.analytics.models import UsageEvent
from apps.inference.online import gateway, messages
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.inference.edge_models import SLOW_MANIFEST, slow_model_bytes, steps_for_seconds
from tests.inference.online_support import forget_online_requests, wait_for_serving_loop
from tests.jobs_support import purge_broker, wait_for
from tests.usage_support import drained

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(inference_root, settings):
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    purge_broker()
    forget_online_requests()
    started = start_inference_worker(inference_root)
    wait_for_serving_loop()
    yield started
    started.kill()
    purge_broker()


def pool_processes(worker) -> list[int]:
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def test_a_worker_killed_mid_batch_costs_its_callers_a_503_and_the_replacement_serves_next(runnable, world, worker):
    version = runnable.version("slow", {"model.onnx": slow_model_bytes()}, SLOW_MANIFEST)
    client = api_client_for(world.user("member"))
    url = f"/api/v1/models/{world.org.slug}/slow/versions/{version.label}/predict"
    answers: list = []

    def call() -> None:
        try:
            started = time.monotonic()
            answers.append((client.post(url, {"inputs": {"steps": [steps_for_seconds(8)]}, "timeout": 40},
                                        format="json"), time.monotonic() - started))  # fmt: skip
        finally:
            connection.close()

    caller = threading.Thread(target=call)
    caller.start()
    redis = gateway._client()
    wait_for(lambda: redis.keys(messages.taken_key("*")), timeout=30, what="the request taken by the serving loop")
    (child,) = pool_processes(worker)
    os.kill(child, signal.SIGKILL)
    caller.join(timeout=40)
    assert not caller.is_alive(), "the caller hung"
    ((response, waited),) = answers
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "worker_lost"
    assert int(response["Retry-After"]) >= 1
    assert waited < 20, f"answered after {waited:.1f} s: the loss was not noticed before the timeout"

    wait_for(lambda: [pid for pid in pool_processes(worker) if pid != child], timeout=60, what="the replacement")
    wait_for_serving_loop()
    served = client.post(url, {"inputs": {"steps": [1]}, "timeout": 30}, format="json")
    assert served.status_code == 200, served.content

    events = list(drained(UsageEvent).order_by("created_at"))
    assert [event.status_code for event in events] == [503, 200]
    assert len({event.event_id for event in events}) == 2
