"""The faulty registry peer itself: it serves the index and files, and each fault does what it says."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.peers.faulty_registry import FaultyRegistry, faulty_registry  # noqa: F401  (the fixture)


def test_faulty_registry_serves_json_pages_linked_by_next(faulty_registry: FaultyRegistry):  # noqa: F811
    first = httpx.get(faulty_registry.url).json()
    second = httpx.get(faulty_registry.url + "?page=2").json()
    assert [model["id"] for model in first["models"]] == ["acme/model-001", "acme/model-002"]
    assert first["next"] == "index.json?page=2"
    assert [model["id"] for model in second["models"]] == ["acme/model-003"]
    assert second["next"] is None


def test_faulty_registry_serves_json_lines_with_a_header(faulty_registry):  # noqa: F811
    lines = httpx.get(faulty_registry.jsonl_url).text.splitlines()
    assert lines[0].startswith('{"gpux_index": 1')
    assert len(lines) == 4


def test_faulty_registry_serves_files_matching_their_sha256(faulty_registry):  # noqa: F811
    listed = faulty_registry.models[0]["versions"][0]["files"][0]
    content = httpx.get(faulty_registry.base_url + listed["url"]).content
    assert hashlib.sha256(content).hexdigest() == listed["sha256"]


def test_corrupt_file_keeps_its_size_and_changes_its_sha256(faulty_registry):  # noqa: F811
    listed = faulty_registry.models[0]["versions"][0]["files"][0]
    faulty_registry.faults.corrupt_files.add(listed["url"])
    content = httpx.get(faulty_registry.base_url + listed["url"]).content
    assert len(content) == listed["size"]
    assert hashlib.sha256(content).hexdigest() != listed["sha256"]


def test_missing_file_answers_404(faulty_registry):  # noqa: F811
    listed = faulty_registry.models[0]["versions"][0]["files"][0]
    faulty_registry.faults.missing_files.add(listed["url"])
    assert httpx.get(faulty_registry.base_url + listed["url"]).status_code == 404


def test_rate_limit_answers_429_with_retry_after_for_the_first_requests_only(faulty_registry):  # noqa: F811
    faulty_registry.faults.rate_limit(count=2, retry_after=3)
    answers = [httpx.get(faulty_registry.url) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"
    assert [request.status for request in faulty_registry.requests_to("/index.json")] == [429, 429, 200]


def test_injected_status_answers_every_request(faulty_registry):  # noqa: F811
    faulty_registry.faults.status = 500
    assert httpx.get(faulty_registry.url).status_code == 500
    faulty_registry.reset()
    assert httpx.get(faulty_registry.url).status_code == 200
    assert len(faulty_registry.requests) == 1


def test_status_for_one_path_leaves_the_others_alone(faulty_registry):  # noqa: F811
    faulty_registry.faults.status_for["/index.jsonl"] = 503
    assert httpx.get(faulty_registry.jsonl_url).status_code == 503
    assert httpx.get(faulty_registry.url).status_code == 200


def test_hang_outlasts_a_client_timeout(faulty_registry):  # noqa: F811
    faulty_registry.faults.hang = 30
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(faulty_registry.url, timeout=0.3)


def test_malformed_index_is_not_json(faulty_registry):  # noqa: F811
    faulty_registry.faults.malformed_index = True
    with pytest.raises(ValueError):
        httpx.get(faulty_registry.url).json()


def test_endless_pages_always_link_a_new_page(faulty_registry):  # noqa: F811
    faulty_registry.faults.endless_pages = True
    page = httpx.get(faulty_registry.url + "?page=41").json()
    assert page["next"] == "index.json?page=42"
    assert page["models"][0]["id"] == "endless/page-41"


def test_looping_pages_link_the_last_page_back_to_the_first(faulty_registry):  # noqa: F811
    faulty_registry.faults.looping_pages = True
    assert httpx.get(faulty_registry.url + "?page=2").json()["next"] == "index.json?page=1"


def test_token_is_required_when_set():
    with FaultyRegistry(token="s3cret") as registry:
        assert httpx.get(registry.url).status_code == 401
        assert httpx.get(registry.url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(registry.url, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert registry.requests[-1].headers["Authorization"] == "Bearer s3cret"
