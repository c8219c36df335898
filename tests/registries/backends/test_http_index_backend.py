"""The HTTP index backend against real servers on loopback: a static file server and the faulty registry."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest

from apps.registries.backends.http_index import HttpIndexBackend
from apps.registries.sdk import (
    BackendContext,
    InvalidResponse,
    NetworkPolicy,
    NotFound,
    RateLimited,
    RemoteFile,
    Unauthorized,
    Unavailable,
    UnsafeURL,
)
from apps.registries.sdk.http import read_all
from apps.registries.sdk.testing import assert_conforms
from tests.peers.faulty_registry import FaultyRegistry, faulty_registry  # noqa: F401  (the fixture)
from tests.peers.static_server import Site, StaticServer, static_server  # noqa: F401  (the session fixture)

LOOPBACK = BackendContext(policy=NetworkPolicy(allowed=("127.0.0.1/32",)))


def backend_for(url: str, *, context: BackendContext = LOOPBACK, **values) -> HttpIndexBackend:
    """A backend configured the way the portal does it: values cleaned (and SSRF-checked) first."""
    return HttpIndexBackend(HttpIndexBackend.clean_config({"url": url, **values}, context=context), context=context)


def listed_ids(backend: HttpIndexBackend) -> list[str]:
    return [model.id for page in backend.iter_models() for model in page.models]


@pytest.fixture
def site(static_server: StaticServer, request) -> Site:  # noqa: F811
    return static_server.site(request.node.name.replace("[", "-").replace("]", ""))


@pytest.fixture
def iris_entries(site: Site) -> list[dict]:
    return [site.model_entry(f"acme/iris-{number}", versions=("1", "2")) for number in range(1, 6)]


# --- both formats conform ---------------------------------------------------------------------------------
@pytest.mark.parametrize("page_size", [1, 2, 1000])
def test_json_lines_index_on_a_static_server_passes_the_conformance_kit(site, iris_entries, page_size):
    url = site.write_jsonl(iris_entries)
    assert_conforms(backend_for(url, page_size=page_size), missing_model_id="acme/nothing")


@pytest.mark.parametrize("page_size", [1, 3, 1000])
def test_paginated_json_index_on_a_static_server_passes_the_conformance_kit(site, iris_entries, page_size):
    url = site.write_json_pages(iris_entries, page_size=2)
    assert_conforms(backend_for(url, page_size=page_size), missing_model_id="acme/nothing")


def test_files_without_a_url_are_found_at_their_default_location(site):
    entries = [site.model_entry("acme/plain", explicit_urls=False)]
    url = site.write_jsonl(entries)
    assert_conforms(backend_for(url), missing_model_id="acme/nothing")
    file = backend_for(url).get_model("acme/plain").versions[0].files[0]
    assert file.locator == site.url_for("acme/plain/1/model.onnx")


def test_streamed_file_is_the_real_iris_model(site, iris_entries):
    backend = backend_for(site.write_jsonl(iris_entries))
    model = backend.get_model("acme/iris-3")
    file = next(f for f in model.versions[0].files if f.path == "model.onnx")
    data = read_all(backend.open_file(model.id, "1", file))
    assert hashlib.sha256(data).hexdigest() == file.sha256
    assert len(data) == file.size


def test_json_lines_without_a_suffix_are_recognised_from_the_first_line(site, iris_entries):
    url = site.write_jsonl(iris_entries, name="catalog")
    assert listed_ids(backend_for(url)) == [entry["id"] for entry in iris_entries]


def test_pretty_printed_json_page_without_a_suffix_is_recognised(site, iris_entries):
    (site.directory / "catalog").write_text(json.dumps({"gpux_index": 1, "models": iris_entries}, indent=2))
    assert listed_ids(backend_for(site.url_for("catalog"))) == [entry["id"] for entry in iris_entries]


def test_one_line_json_page_without_suffix_is_read_as_a_page(site, iris_entries):
    (site.directory / "all").write_text(json.dumps({"gpux_index": 1, "models": iris_entries, "next": None}))
    assert listed_ids(backend_for(site.url_for("all"))) == [entry["id"] for entry in iris_entries]


def test_empty_index_lists_one_empty_last_page(site):
    pages = list(backend_for(site.write_jsonl([])).iter_models())
    assert [(page.models, page.cursor) for page in pages] == [((), None)]


# --- malformed documents and entries -------------------------------------------------------------------------
def test_malformed_json_page_raises_invalid_response(faulty_registry: FaultyRegistry):  # noqa: F811
    faulty_registry.faults.malformed_index = True
    with pytest.raises(InvalidResponse, match="malformed JSON"):
        list(backend_for(faulty_registry.url).iter_models())


def test_unreadable_json_line_is_skipped_and_reported_with_its_line_number(faulty_registry):  # noqa: F811
    faulty_registry.faults.malformed_index = True
    backend = backend_for(faulty_registry.jsonl_url)
    assert listed_ids(backend) == ["acme/model-001", "acme/model-002", "acme/model-003"]
    [skipped] = backend.skipped
    assert skipped.location == "line 3"
    assert "not valid JSON" in skipped.reason


@pytest.mark.parametrize("writer", ["write_jsonl", "write_json_pages"])
def test_entries_that_fail_validation_are_skipped_with_the_field_named(site, writer):
    good = site.model_entry("acme/good")
    bad = [
        {"name": "no id"},
        {"id": "acme/bad-sha", "versions": [{"label": "1", "files": [{"path": "m.onnx", "sha256": "xyz"}]}]},
        {"id": "acme/escape", "versions": [{"label": "1", "files": [{"path": "../../etc/passwd"}]}]},
        {"id": "acme/bad-tags", "tags": "nlp"},
        {"id": "acme/no-label", "versions": [{"files": []}]},
        ["not", "an", "object"],
        {"id": "acme/good"},
    ]
    url = getattr(site, writer)([good, *bad])
    backend = backend_for(url)
    assert listed_ids(backend) == ["acme/good"]
    reasons = [entry.reason for entry in backend.skipped]
    assert len(reasons) == len(bad)
    assert "“id” is required" in reasons[0]
    assert "sha256" in reasons[1]
    assert "“..”" in reasons[2]
    assert "tags" in reasons[3]
    assert "label" in reasons[4]
    assert "must be an object" in reasons[5]
    assert "listed more than once" in reasons[6]
    assert [entry.model_id for entry in backend.skipped][1:4] == ["acme/bad-sha", "acme/escape", "acme/bad-tags"]


def test_skipped_entries_are_reset_by_each_listing(faulty_registry):  # noqa: F811
    faulty_registry.faults.malformed_index = True
    backend = backend_for(faulty_registry.jsonl_url)
    listed_ids(backend)
    listed_ids(backend)
    assert len(backend.skipped) == 1


def test_unknown_format_version_raises_invalid_response(site):
    (site.directory / "v2.jsonl").write_text(json.dumps({"gpux_index": 2}) + "\n" + json.dumps({"id": "a"}) + "\n")
    with pytest.raises(InvalidResponse, match="version 1"):
        list(backend_for(site.url_for("v2.jsonl")).iter_models())


def test_cursor_from_another_backend_raises_invalid_response(site):
    backend = backend_for(site.write_jsonl([]))
    with pytest.raises(InvalidResponse, match="cursor"):
        list(backend.iter_models("after:acme/x"))


# --- pagination loops --------------------------------------------------------------------------------------
def test_next_link_back_to_a_page_already_read_raises_invalid_response(faulty_registry):  # noqa: F811
    faulty_registry.faults.looping_pages = True
    with pytest.raises(InvalidResponse, match="loop"):
        list(backend_for(faulty_registry.url).iter_models())


def test_endless_distinct_pages_keep_coming_so_the_engine_cap_must_stop_them(faulty_registry):  # noqa: F811
    faulty_registry.faults.endless_pages = True
    pages = list(itertools.islice(backend_for(faulty_registry.url).iter_models(), 25))
    assert len({page.cursor for page in pages}) == 25
    assert all(page.cursor for page in pages)


# --- files -------------------------------------------------------------------------------------------------
def test_listed_file_that_answers_404_raises_not_found(faulty_registry):  # noqa: F811
    backend = backend_for(faulty_registry.url)
    model = backend.get_model("acme/model-002")
    file = model.versions[0].files[0]
    faulty_registry.faults.missing_files.add(FaultyRegistry.file_path(model.id, "1", file.path))
    with pytest.raises(NotFound):
        read_all(backend.open_file(model.id, "1", file))


def test_file_url_on_a_private_address_is_refused_when_opened(site):
    file = {"path": "m.onnx", "url": "http://169.254.169.254/latest/meta-data/"}
    entry = {"id": "acme/meta", "versions": [{"label": "1", "files": [file]}]}
    backend = backend_for(site.write_jsonl([entry]))
    file = backend.get_model("acme/meta").versions[0].files[0]
    with pytest.raises(UnsafeURL):
        read_all(backend.open_file("acme/meta", "1", file))


def test_opening_a_file_that_was_never_listed_raises_not_found(site, iris_entries):
    backend = backend_for(site.write_jsonl(iris_entries))
    with pytest.raises(NotFound):
        read_all(backend.open_file("acme/iris-1", "1", RemoteFile(path="ghost.onnx", locator="ghost.onnx")))


# --- credentials -------------------------------------------------------------------------------------------
def test_token_is_sent_as_a_bearer_token_to_the_index():
    with FaultyRegistry(token="s3cret") as registry:
        registry.add_models(2)
        backend = backend_for(registry.jsonl_url, token="s3cret")
        assert_conforms(backend, missing_model_id="acme/nothing")
        assert {request.headers.get("Authorization") for request in registry.requests} == {"Bearer s3cret"}


def test_wrong_token_raises_unauthorized():
    with FaultyRegistry(token="s3cret") as registry:
        registry.add_models(1)
        with pytest.raises(Unauthorized):
            list(backend_for(registry.url, token="wrong").iter_models())


def test_token_is_not_sent_to_files_on_another_origin():
    with FaultyRegistry(token="s3cret") as index, FaultyRegistry() as cdn:
        entry = cdn.add_model("acme/cdn")
        for file in entry["versions"][0]["files"]:
            file["url"] = cdn.base_url + file["url"]
        index.models.append(entry)
        backend = backend_for(index.url, token="s3cret")
        file = backend.get_model("acme/cdn").versions[0].files[0]
        read_all(backend.open_file("acme/cdn", "1", file))
        assert cdn.requests and all("Authorization" not in request.headers for request in cdn.requests)


# --- transport errors come back as SDK errors --------------------------------------------------------------
def test_server_error_raises_unavailable(faulty_registry):  # noqa: F811
    faulty_registry.faults.status = 500
    with pytest.raises(Unavailable):
        list(backend_for(faulty_registry.url).iter_models())


def test_rate_limit_raises_rate_limited_with_retry_after(faulty_registry):  # noqa: F811
    faulty_registry.faults.rate_limit(count=1, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        list(backend_for(faulty_registry.jsonl_url).iter_models())
    assert caught.value.retry_after == 7
    assert listed_ids(backend_for(faulty_registry.jsonl_url)) == ["acme/model-001", "acme/model-002", "acme/model-003"]


def test_index_that_hangs_past_the_timeout_raises_unavailable(faulty_registry):  # noqa: F811
    faulty_registry.faults.hang = 30
    context = BackendContext(policy=NetworkPolicy(allowed=("127.0.0.1/32",)), timeout=0.5)
    with pytest.raises(Unavailable, match="in time"):
        list(backend_for(faulty_registry.url, context=context).iter_models())


# --- SSRF ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/index.jsonl", "http://169.254.169.254/latest/meta-data/"])
def test_index_url_on_loopback_or_link_local_is_refused_by_the_default_policy(url):
    with pytest.raises(UnsafeURL) as caught:
        HttpIndexBackend.clean_config({"url": url}, context=BackendContext())
    assert caught.value.field == "url"


def test_token_is_a_sensitive_parameter():
    assert HttpIndexBackend.sensitive_parameters() == ("token",)
