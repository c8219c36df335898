"""A finished job's webhook is delivered by a task on the ``default`` queue, never on the inference queues (a
slow receiver must not hold an inference process); a failed attempt schedules the next one there with a delay,
the last attempt gives up, and a redelivered message for an attempt already made posts nothing. With no worker
consuming, the messages are read from the broker itself; deliveries go to a receiver on loopback."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from apps.inference.models import WebhookDelivery
from apps.inference.predictions import PredictionInput, start_prediction
from apps.inference.webhooks import deliver, queue_webhook, sign, verify
from tests import jobs_support
from tests.inference.edge_models import iris_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs Redis, as in CI")
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    jobs_support.purge_broker()
    yield redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    jobs_support.purge_broker()


@pytest.fixture
def failing_receiver(settings):
    """A receiver on 127.0.0.1 that answers 500 to every POST; the URL is allow-listed."""
    posts: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.INFERENCE_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.INFERENCE_WEBHOOK_RETRY_SECONDS = 7
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", posts
    server.shutdown()
    server.server_close()


def job_with_webhook(runnable, world, url: str):
    import numpy as np

    version = iris_version(runnable)
    request = PredictionInput(arrays={"float_input": np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)})
    return start_prediction(
        version=version, request=request, user=world.user("member"), organization=world.org, webhook_url=url
    )


def messages(broker, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]


def test_the_first_attempt_is_sent_to_the_default_queue_once_the_outcome_commits(
    runnable, world, broker, django_capture_on_commit_callbacks
):
    job = job_with_webhook(runnable, world, "https://hooks.example.com/gpux")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        queue_webhook(job)
        assert messages(broker, "default") == []  # nothing before the commit
    assert len(callbacks) == 1
    (message,) = messages(broker, "default")
    assert message["headers"]["task"] == "inference.deliver_webhook"
    assert json.loads(base64.b64decode(message["body"]))[0] == [job.pk, 1]
    assert messages(broker, "inference.cpu") == messages(broker, "inference.gpu") == []


def test_a_failed_attempt_schedules_the_next_on_the_default_queue_with_a_delay(
    runnable, world, broker, failing_receiver
):
    url, posts = failing_receiver
    job = job_with_webhook(runnable, world, url)
    assert deliver(job.pk, 1) == "retrying"
    assert len(posts) == 1
    delivery = WebhookDelivery.objects.get(job=job)
    assert (delivery.attempt, delivery.status_code, delivery.succeeded) == (1, 500, False)
    (message,) = messages(broker, "default")
    assert json.loads(base64.b64decode(message["body"]))[0] == [job.pk, 2]
    assert message["headers"]["eta"]  # delayed by INFERENCE_WEBHOOK_RETRY_SECONDS

    assert deliver(job.pk, 1) == "done"  # the same message again: no second POST
    assert len(posts) == 1


def test_the_last_attempt_gives_up_and_schedules_nothing(runnable, world, broker, failing_receiver, settings):
    url, posts = failing_receiver
    job = job_with_webhook(runnable, world, url)
    last = settings.INFERENCE_WEBHOOK_ATTEMPTS
    assert deliver(job.pk, last) == "gave up"
    assert WebhookDelivery.objects.get(job=job).attempt == last
    assert len(posts) == 1
    assert messages(broker, "default") == []


def test_a_signature_verifies_only_its_own_body_secret_and_recent_time():
    body = b'{"event": "job.finished"}'
    header = sign("whsec_a", body, timestamp=1_000_000)
    assert verify("whsec_a", body, header, now=1_000_010)
    assert not verify("whsec_b", body, header, now=1_000_010)
    assert not verify("whsec_a", body + b" ", header, now=1_000_010)
    assert not verify("whsec_a", body, header, now=1_000_000 + 301)  # replayed after the tolerance
    assert not verify("whsec_a", body, "v1=deadbeef", now=1_000_010)
