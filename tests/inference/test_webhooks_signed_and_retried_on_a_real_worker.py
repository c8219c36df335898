"""Webhooks of asynchronous predictions, end to end: a real prefork worker runs the job and, from the ``default``
queue, POSTs the signed answer to a receiver on loopback (allow-listed for the test, in the API's settings and in
the worker's ``GPUX_WEBHOOK_ALLOWED_NETWORKS``). A receiver that fails is retried with backoff
(``INFERENCE_WEBHOOK_RETRY_SECONDS``), every attempt kept in the delivery log the API lists."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from apps.core.jobs import Job
from apps.inference.models import WebhookDelivery
from apps.inference.webhooks import SIGNATURE_HEADER, secret_of, verify
from tests import jobs_support
from tests.conftest import api_client_for
from tests.inference.conftest import start_inference_worker
from tests.inference.edge_models import iris_version

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SETOSA = [[5.1, 3.5, 1.4, 0.2]]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that records each POST and answers the next of ``statuses`` (then 200)."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"no")

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/gpux"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def webhooks_to_loopback(settings):
    settings.INFERENCE_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False


@pytest.fixture(scope="module")
def webhook_worker(inference_root, django_db_setup, django_db_blocker):
    """A worker on ``inference.cpu`` and ``default`` that may call loopback and retries after 0.1 s, 0.2 s..."""
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need PostgreSQL and Redis, as in CI")
    with django_db_blocker.unblock():
        jobs_support.purge_broker()
        worker = start_inference_worker(
            inference_root,
            queues=("inference.cpu", "default"),
            env={"GPUX_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32", "INFERENCE_WEBHOOK_RETRY_SECONDS": "0.1"},
        )
    yield worker
    kill_with_its_pool(worker)  # nothing in hand matters now; a cold shutdown takes seconds
    with django_db_blocker.unblock():
        jobs_support.purge_broker()


def kill_with_its_pool(worker) -> None:
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    children = [int(pid) for pid in path.read_text().split()] if path.exists() else []
    worker.kill()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def receiver():
    def make(*statuses: int) -> Receiver:
        made.append(Receiver(list(statuses)))
        return made[-1]

    made: list[Receiver] = []
    yield make
    for item in made:
        item.stop()


def start_async_prediction(world, version, webhook_url: str) -> Job:
    response = api_client_for(world.user("member")).post(
        f"/api/v1/models/{world.org.slug}/{version.model.name}/versions/{version.label}/predict?async=1",
        {"inputs": {"float_input": SETOSA}, "webhook_url": webhook_url},
        format="json",
    )
    assert response.status_code == 202, response.content
    return Job.objects.get(uuid=response.json()["job"])


def test_the_receiver_gets_one_signed_post_with_the_jobs_outputs(runnable, webhook_worker, world, receiver):
    hook = receiver()
    job = start_async_prediction(world, iris_version(runnable), hook.url)
    delivery = jobs_support.wait_for(
        lambda: WebhookDelivery.objects.filter(job=job).first(), timeout=30, what="the webhook's delivery"
    )
    assert (delivery.attempt, delivery.status_code, delivery.succeeded, delivery.url) == (1, 200, True, hook.url)

    (received,) = hook.requests
    secret = secret_of(job.organization_id)
    assert verify(secret, received.body, received.headers[SIGNATURE_HEADER])
    assert not verify(secret, received.body.replace(b"succeeded", b"failed"), received.headers[SIGNATURE_HEADER])
    assert received.headers["X-GPUX-Job"] == str(job.uuid)
    assert received.headers["X-GPUX-Delivery-Attempt"] == "1"
    body = json.loads(received.body)
    assert body["event"] == "job.finished"
    assert (body["job"], body["status"]) == (str(job.uuid), "succeeded")
    assert body["outputs"]["label"] == [0]
    assert len(body["outputs"]["probabilities"][0]) == 3
    assert body["answer"]["predictions"][0]["label"] == "setosa"
    assert "inference.deliver_webhook[" in webhook_worker.log()


def test_a_failing_receiver_is_retried_and_every_attempt_is_in_the_delivery_log(
    runnable, webhook_worker, world, receiver
):
    hook = receiver(500, 500)
    job = start_async_prediction(world, iris_version(runnable), hook.url)
    jobs_support.wait_for(
        lambda: WebhookDelivery.objects.filter(job=job, succeeded=True).exists(), timeout=30, what="the third attempt"
    )
    deliveries = list(WebhookDelivery.objects.filter(job=job).order_by("attempt"))
    assert [(d.attempt, d.status_code, d.succeeded) for d in deliveries] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert deliveries[0].error == "The receiver answered HTTP 500."
    assert [r.headers["X-GPUX-Delivery-Attempt"] for r in hook.requests] == ["1", "2", "3"]
    secret = secret_of(job.organization_id)
    assert all(verify(secret, r.body, r.headers[SIGNATURE_HEADER]) for r in hook.requests)

    log = api_client_for(world.user("member")).get(f"/api/v1/predictions/{job.uuid}/webhooks/")
    assert log.status_code == 200, log.content
    assert [(row["attempt"], row["status_code"], row["succeeded"]) for row in log.json()] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert log.json()[0]["error"] == "The receiver answered HTTP 500."
    assert log.json()[2]["url"] == hook.url
    outsider = api_client_for(world.user("outsider")).get(f"/api/v1/predictions/{job.uuid}/webhooks/")
    assert outsider.status_code == 404
