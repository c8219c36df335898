"""/metrics answers only the operator's Prometheus: the bearer token (METRICS_BEARER_TOKEN) or an allowed network
(METRICS_ALLOWED_NETWORKS, loopback by default outside production). Anyone else: 404, or 403 for a wrong token."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.metrics_support import TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def remote():
    """A client from an address outside every allowed network."""
    return Client(REMOTE_ADDR="203.0.113.7")


@pytest.fixture(autouse=True)
def _token(settings):
    settings.METRICS_BEARER_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32", "::1/128"]


def test_prometheus_with_the_bearer_token_reads_the_metrics(remote):
    response = remote.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"gpux_workers_up" in response.content


def test_an_anonymous_caller_from_elsewhere_gets_404(remote):
    response = remote.get("/metrics")
    assert response.status_code == 404
    assert b"gpux_" not in response.content


def test_a_wrong_token_gets_403_and_no_metrics(remote):
    response = remote.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert response.status_code == 403
    assert b"gpux_" not in response.content


def test_a_signed_in_staff_user_from_elsewhere_still_gets_404(remote, world):
    world.user("owner").is_staff = True
    world.user("owner").save()
    remote.force_login(world.user("owner"))
    assert remote.get("/metrics").status_code == 404


def test_an_address_in_an_allowed_network_reads_without_a_token(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.2.0.1").get("/metrics").status_code == 404


def test_without_a_token_setting_a_bearer_header_is_refused(settings, remote):
    settings.METRICS_BEARER_TOKEN = None
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 403


def test_behind_a_trusted_proxy_the_forwarded_address_decides(settings):
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    proxy = Client(REMOTE_ADDR="127.0.0.1")
    assert proxy.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.0.9, 127.0.0.1").status_code == 200
    assert proxy.get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.4").status_code == 404
