"""The SDK's HTTP client: SSRF checks on every hop, SDK errors for statuses, credentials kept to their origin."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.registries.sdk import (
    HttpClient,
    NetworkPolicy,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsafeURL,
    parse_retry_after,
)


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []
    redirect_to = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.seen.append((self.path, self.headers.get("Authorization", "")))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", Handler.redirect_to)
            self.end_headers()
            return
        status = {"/401": 401, "/404": 404, "/429": 429, "/503": 503}.get(self.path, 200)
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "7")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')


@pytest.fixture
def servers():
    started = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    Handler.seen.clear()
    yield [f"http://127.0.0.1:{server.server_address[1]}" for server in started]
    for server in started:
        server.shutdown()


LOOPBACK = NetworkPolicy(allowed=("127.0.0.1/32",))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://localhost/",
        "http://0.0.0.0/",
        "ftp://example.com/",
        "http://user:pw@example.com/",
    ],
)
def test_the_default_policy_refuses_private_loopback_link_local_and_odd_urls(url):
    with pytest.raises(UnsafeURL):
        NetworkPolicy().check_url(url)


def test_an_allow_list_lets_a_network_or_a_host_name_through():
    NetworkPolicy(allowed=("127.0.0.0/8",)).check_url("http://127.0.0.1:8080/x")
    NetworkPolicy(allowed=("localhost",)).check_url("http://localhost/x")


def test_statuses_become_sdk_errors(servers):
    client = HttpClient(policy=LOOPBACK, timeout=5)
    with pytest.raises(Unauthorized):
        client.get_json(servers[0] + "/401")
    with pytest.raises(NotFound):
        client.get_json(servers[0] + "/404")
    with pytest.raises(RateLimited) as limited:
        client.get_json(servers[0] + "/429")
    assert limited.value.retry_after == 7
    with pytest.raises(Unavailable):
        client.get_json(servers[0] + "/503")
    with pytest.raises(Unavailable):
        client.get_json("http://127.0.0.1:1/")  # nothing listens there


def test_a_redirect_to_another_origin_does_not_carry_the_credentials(servers):
    Handler.redirect_to = servers[1] + "/landing"
    client = HttpClient(policy=LOOPBACK, timeout=5, headers={"Authorization": "Bearer s3cret"})
    assert client.get_json(servers[0] + "/redirect") == {"ok": True}

    assert Handler.seen == [("/redirect", "Bearer s3cret"), ("/landing", "")]


def test_a_redirect_to_a_refused_address_is_refused(servers):
    Handler.redirect_to = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(UnsafeURL):
        HttpClient(policy=LOOPBACK, timeout=5).get_json(servers[0] + "/redirect")


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("12") == 12
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
