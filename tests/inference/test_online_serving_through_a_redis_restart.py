"""Redis restarted under online load (a throwaway redis-server on a port of its own, never the shared one): callers
get 503 with ``Retry-After`` while it is down, never a 500; once it is back on the same port, the worker's serving
loop and this web process reconnect by themselves and predictions are answered again, no restart needed."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.db import connection

from apps.inference.online import gateway
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.inference.online_support import wait_for_serving_loop
from tests.jobs_support import ThrowawayRedis, redis_at, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
IRIS = {"inputs": {"float_input": [[5.1, 3.5, 1.4, 0.2]]}, "timeout": 10}


def restart_on(port: int, folder) -> subprocess.Popen:
    process = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--logfile", str(folder / "redis-again.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return process


def test_predictions_answer_503_while_redis_is_down_and_200_once_it_is_back(
    runnable, world, settings, tmp_path, inference_root
):
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    version = runnable.iris(tmp_path)
    url = f"/api/v1/models/{world.org.slug}/{version.model.name}/versions/{version.label}/predict"
    client = api_client_for(world.user("member"))
    redis = ThrowawayRedis(tmp_path)
    again = None
    worker = None
    try:
        with redis_at(redis.url, settings):
            settings.REDIS_URL = redis.url
            worker = start_inference_worker(
                inference_root, env={"REDIS_URL": redis.url, "CELERY_BROKER_URL": redis.url.replace("/0", "/1")}
            )
            wait_for_serving_loop()
            assert client.post(url, IRIS, format="json").status_code == 200

            redis.kill()
            gateway.reset()
            down = [client.post(url, IRIS, format="json") for _ in range(3)]
            assert {response.status_code for response in down} == {503}, [r.content[:200] for r in down]
            assert all(response.has_header("Retry-After") for response in down)

            again = restart_on(redis.port, tmp_path)
            wait_for(redis._answers, timeout=10, what="Redis back")
            wait_for_serving_loop(timeout=30)
            back = client.post(url, IRIS, format="json")
            assert back.status_code == 200, back.content
            assert "job" not in back.json()
    finally:
        if worker is not None:
            worker.kill()
        redis.kill()
        if again is not None:
            again.kill()
            again.wait(timeout=10)
