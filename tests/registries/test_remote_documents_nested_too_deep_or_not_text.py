"""A remote registry is input too: its JSON answers, index lines and metadata files nested past
INPUT_MAX_NESTING_DEPTH, or holding a lone surrogate, are refused like malformed ones (the page fails with
InvalidResponse, the line or the model is skipped with its reason) instead of exhausting Python's recursion.
Real servers and files: the static file server on loopback, a directory tree."""

from __future__ import annotations

import pytest

from apps.registries.sdk import InvalidResponse
from tests.peers.static_server import Site, StaticServer, static_server  # noqa: F401  (the session fixture)
from tests.registries.backends.test_filesystem_backend import add_version, context, volume  # noqa: F401
from tests.registries.backends.test_filesystem_backend import backend_for as filesystem_backend
from tests.registries.backends.test_http_index_backend import backend_for, listed_ids

DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture
def site(static_server: StaticServer, request) -> Site:  # noqa: F811
    return static_server.site(request.node.name.replace("[", "-").replace("]", ""))


def test_a_json_index_page_nested_past_the_limit_is_an_invalid_response(site):
    (site.directory / "index.json").write_text('{"gpux_index": 1, "models": ' + DEEP + "}")
    with pytest.raises(InvalidResponse, match="nested deeper than 64 levels"):
        listed_ids(backend_for(site.url_for("index.json")))


def test_index_lines_nested_too_deep_or_with_a_lone_surrogate_are_skipped_with_their_reason(site):
    good = site.model_entry("acme/good")
    url = site.write_jsonl([good, '{"id": "acme/deep", "tags": ' + DEEP + "}", '{"id": "acme/\\ud83d"}'])
    backend = backend_for(url)
    assert listed_ids(backend) == ["acme/good"]
    reasons = [entry.reason for entry in backend.skipped]
    assert [entry.location for entry in backend.skipped] == ["line 3", "line 4"]
    assert "nested deeper than 64 levels" in reasons[0]
    assert "id: holds a lone UTF-16 surrogate" in reasons[1]


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("model.json", '{"tags": ' + DEEP + "}", "nested deeper than 64 levels"),
        ("gpux.yml", "tags: " + DEEP + "\n", "nested deeper than 64 levels"),
        ("gpux.yml", 'name: "\\ud83d"\n', "name: holds a lone UTF-16 surrogate"),
    ],
    ids=["json-nested", "yaml-nested", "yaml-lone-surrogate"],
)
def test_a_metadata_file_nested_too_deep_or_not_text_skips_its_model(volume, context, name, text, reason):  # noqa: F811
    root = volume / "models"
    add_version(root, "acme/iris", "1")
    add_version(root, "acme/odd", "1")
    (root / "acme" / "odd" / name).write_text(text)
    backend = filesystem_backend(root, context)
    assert [model.id for page in backend.iter_models() for model in page.models] == ["acme/iris"]
    [skipped] = backend.skipped
    assert skipped.model_id == "acme/odd" and f"{name} cannot be read" in skipped.reason
    assert reason in skipped.reason
