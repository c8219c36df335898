"""Webhook deliveries connect to the address the URL was vetted to: a receiver name that answers a public address
when checked and 127.0.0.1 when connected (DNS rebinding) gets the POST at the vetted address, with one lookup; a
name that answers 127.0.0.1 is refused, the delivery log says why, and nothing reaches the inside.

See tests/outbound_support.py: 127.0.0.2 stands for the public address (allow-listed here as a public address
would pass), and the DNS resolver is the only faked part (no name server here can answer differently twice).
"""

from __future__ import annotations

import socket

import pytest

from apps.inference.models import WebhookDelivery
from apps.inference.webhooks import deliver
from tests.inference.test_webhooks_are_queued_on_the_default_queue import job_with_webhook
from tests.outbound_support import INSIDE, VETTED, RebindingResolver, start_pair, stop

pytestmark = pytest.mark.django_db


@pytest.fixture
def servers(settings):
    settings.INFERENCE_WEBHOOK_ALLOWED_NETWORKS = [f"{VETTED}/32"]
    settings.INFERENCE_WEBHOOK_ATTEMPTS = 1  # no retry to schedule: each test makes one attempt
    settings.INFERENCE_PERFORMANCE_CARD_ON_PUBLISH = False
    vetted, inside = start_pair()
    yield vetted, inside
    stop(vetted, inside)


def test_a_receiver_name_that_rebinds_to_loopback_gets_the_post_at_the_vetted_address(
    runnable, world, servers, monkeypatch
):
    vetted, inside = servers
    job = job_with_webhook(runnable, world, f"http://hooks.test:{vetted.port}/gpux")
    resolver = RebindingResolver(socket.getaddrinfo, {"hooks.test": [VETTED, INSIDE]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert deliver(job.pk, 1) == "delivered"
    assert vetted.seen == [("POST", "/gpux", f"hooks.test:{vetted.port}")]
    assert inside.seen == []
    assert resolver.lookups["hooks.test"] == 1
    assert WebhookDelivery.objects.get(job=job).succeeded


def test_a_receiver_name_that_answers_loopback_is_refused_and_the_log_says_why(runnable, world, servers, monkeypatch):
    vetted, inside = servers
    job = job_with_webhook(runnable, world, f"http://hooks.test:{vetted.port}/gpux")
    monkeypatch.setattr(socket, "getaddrinfo", RebindingResolver(socket.getaddrinfo, {"hooks.test": [INSIDE]}))
    assert deliver(job.pk, 1) == "gave up"
    delivery = WebhookDelivery.objects.get(job=job)
    assert not delivery.succeeded and delivery.status_code is None
    assert delivery.error.startswith("“hooks.test” resolves to 127.0.0.1, a private, loopback or link-local address")
    assert "GPUX_WEBHOOK_ALLOWED_NETWORKS" in delivery.error
    assert inside.seen == [] and vetted.seen == []
