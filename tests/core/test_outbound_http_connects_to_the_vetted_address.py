"""Outbound HTTP connects to the address it vetted (``apps.core.outbound``), used by the registries' HTTP client:
a name that answers a public address when checked and 127.0.0.1 when connected (DNS rebinding) still reaches the
vetted address, with one lookup; a name that answers 127.0.0.1 is refused before any connection; each redirect
hop is vetted and pinned again; the Host header, TLS SNI and the certificate check stay with the name.

See tests/outbound_support.py: 127.0.0.2 stands for the public address (the policy allow-lists it, as a public
address would pass), and the resolver is the only faked part.
"""

from __future__ import annotations

import socket

import pytest

from apps.core.outbound import AddressPolicy, UnsafeAddress, pinned_client
from apps.registries.sdk import HttpClient, NetworkPolicy, Unavailable, UnsafeURL
from tests.outbound_support import INSIDE, VETTED, RebindingResolver, certificates, start_pair, stop

POLICY = NetworkPolicy(allowed=(f"{VETTED}/32",))


@pytest.fixture
def servers():
    vetted, inside = start_pair()
    yield vetted, inside
    stop(vetted, inside)


@pytest.fixture
def resolver(monkeypatch):
    """Install a resolver: ``resolver({"name": [first answer, later answers...]})``."""

    def install(answers: dict[str, list[str]]) -> RebindingResolver:
        fake = RebindingResolver(socket.getaddrinfo, answers)
        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return fake

    return install


def test_a_name_that_rebinds_to_loopback_after_the_check_is_still_reached_at_the_vetted_address(servers, resolver):
    vetted, inside = servers
    lookups = resolver({"registry.test": [VETTED, INSIDE]})
    answer = HttpClient(policy=POLICY).get_json(f"http://registry.test:{vetted.port}/index.json")
    assert answer == {"server": "vetted", "host": f"registry.test:{vetted.port}"}
    assert inside.seen == []
    assert lookups.lookups["registry.test"] == 1  # one lookup: what was vetted is what was connected to


def test_a_name_that_answers_loopback_is_refused_and_nothing_is_connected(servers, resolver):
    vetted, inside = servers
    resolver({"registry.test": [INSIDE]})
    with pytest.raises(UnsafeURL) as refused:
        HttpClient(policy=POLICY).get_json(f"http://registry.test:{vetted.port}/index.json")
    assert "“registry.test” resolves to 127.0.0.1" in refused.value.message
    assert refused.value.field == "url"
    assert inside.seen == [] and vetted.seen == []


def test_a_redirect_to_a_name_that_answers_loopback_is_refused_at_that_hop(servers, resolver):
    vetted, inside = servers
    resolver({"registry.test": [VETTED], "inside.test": [INSIDE]})
    vetted.redirect_to = f"http://inside.test:{vetted.port}/secret"
    with pytest.raises(UnsafeURL) as refused:
        HttpClient(policy=POLICY).get_json(f"http://registry.test:{vetted.port}/redirect")
    assert "“inside.test” resolves to 127.0.0.1" in refused.value.message
    assert [path for _, path, _ in vetted.seen] == ["/redirect"]
    assert inside.seen == []


def test_each_redirect_hop_is_pinned_to_its_own_vetted_address(servers, resolver):
    vetted, inside = servers
    lookups = resolver({"registry.test": [VETTED], "mirror.test": [VETTED, INSIDE]})
    vetted.redirect_to = f"http://mirror.test:{vetted.port}/files/model.onnx"
    answer = HttpClient(policy=POLICY).get_json(f"http://registry.test:{vetted.port}/redirect")
    assert answer == {"server": "vetted", "host": f"mirror.test:{vetted.port}"}
    assert inside.seen == []
    assert lookups.lookups == {"registry.test": 1, "mirror.test": 1}


def test_the_pinned_client_for_any_other_fetch_refuses_and_pins_the_same_way(servers, resolver):
    vetted, inside = servers
    resolver({"idp.test": [VETTED, INSIDE], "evil.test": [INSIDE]})
    policy = AddressPolicy(allowed=(f"{VETTED}/32",), setting="GPUX_TEST_ALLOWED", purpose="metadata fetches")
    with pinned_client(policy, field="metadata_url", follow_redirects=True) as client:
        assert client.get(f"http://idp.test:{vetted.port}/metadata").json()["server"] == "vetted"
        with pytest.raises(UnsafeAddress) as refused:
            client.get(f"http://evil.test:{vetted.port}/metadata")
    assert refused.value.field == "metadata_url"
    assert "allow-list it (GPUX_TEST_ALLOWED) before metadata fetches may use it" in refused.value.message
    vetted.redirect_to = f"http://evil.test:{vetted.port}/x"  # followed by httpx itself: still vetted per hop
    with pinned_client(policy, follow_redirects=True) as client, pytest.raises(UnsafeAddress):
        client.get(f"http://idp.test:{vetted.port}/redirect")
    assert inside.seen == []


def test_an_allow_listed_name_that_does_not_resolve_is_a_network_failure_not_a_refusal(resolver):
    with pytest.raises(Unavailable):
        HttpClient(policy=NetworkPolicy(allowed=("nowhere.invalid",))).get_json("http://nowhere.invalid/x")


def test_tls_keeps_the_name_for_sni_and_the_certificate_while_connecting_to_the_vetted_address(tmp_path, resolver):
    client_context, server_contexts = certificates(tmp_path, {"vetted": "registry.test", "inside": "registry.test"})
    vetted, inside = start_pair(tls=(server_contexts["vetted"], server_contexts["inside"]))
    try:
        resolver({"registry.test": [VETTED, INSIDE]})
        client = HttpClient(policy=POLICY, verify=client_context)
        answer = client.get_json(f"https://registry.test:{vetted.port}/index.json")
        assert answer == {"server": "vetted", "host": f"registry.test:{vetted.port}"}
        assert vetted.sni == ["registry.test"]
        assert inside.seen == []
    finally:
        stop(vetted, inside)


def test_tls_refuses_a_certificate_for_another_name_though_the_address_was_vetted(tmp_path, resolver):
    client_context, server_contexts = certificates(tmp_path, {"vetted": "other.test", "inside": "other.test"})
    vetted, inside = start_pair(tls=(server_contexts["vetted"], server_contexts["inside"]))
    try:
        resolver({"registry.test": [VETTED]})
        with pytest.raises(Unavailable) as failed:
            HttpClient(policy=POLICY, verify=client_context).get_json(f"https://registry.test:{vetted.port}/")
        assert "CERTIFICATE_VERIFY_FAILED" in str(failed.value) or "certificate" in str(failed.value).lower()
        assert vetted.seen == []
    finally:
        stop(vetted, inside)


def test_environment_proxies_are_not_used(servers, resolver, monkeypatch):
    vetted, inside = servers
    resolver({"registry.test": [VETTED]})
    monkeypatch.setenv("HTTP_PROXY", f"http://{INSIDE}:{inside.port}")
    monkeypatch.setenv("ALL_PROXY", f"http://{INSIDE}:{inside.port}")
    answer = HttpClient(policy=POLICY).get_json(f"http://registry.test:{vetted.port}/index.json")
    assert answer["server"] == "vetted" and inside.seen == []
