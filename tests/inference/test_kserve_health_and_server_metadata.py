"""The v2 server routes through ``tritonclient.http`` on a live portal: live, ready (the database and Redis
answer; 503 with the reason when Redis does not), and the server's name, version and extensions."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from importlib import metadata

import pytest
import tritonclient.http as triton

from apps.inference import completion

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server):
    with triton.InferenceServerClient(url=live_server.url.removeprefix("http://")) as client:
        yield client


def test_the_server_is_live_and_ready(client):
    assert client.is_server_live()
    assert client.is_server_ready()


def test_the_server_metadata_names_the_portal_its_version_and_the_binary_extension(client):
    answer = client.get_server_metadata()
    assert answer == {
        "name": "gpux-portal",
        "version": metadata.version("gpux-portal"),
        "extensions": ["binary_tensor_data"],
    }


@pytest.fixture
def redis_down(settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    completion._client.cache_clear()
    yield
    completion._client.cache_clear()


def test_the_server_is_not_ready_when_redis_does_not_answer_and_says_so(client, live_server, redis_down):
    assert client.is_server_live()
    assert not client.is_server_ready()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{live_server.url}/v2/health/ready")
    assert refused.value.code == 503
    assert json.loads(refused.value.read())["error"].startswith("Redis (the job broker and result channel) does not")
