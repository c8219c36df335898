"""The example third-party plugin (examples/gpux-registry-example): found by its entry point, conforming."""

from __future__ import annotations

import hashlib

import pytest

from apps.registries.sdk import BackendContext, ConfigurationError, NotFound
from apps.registries.sdk.discovery import available_backends, backend_class
from apps.registries.sdk.http import read_all
from apps.registries.sdk.testing import assert_conforms


@pytest.fixture
def example_class():
    backend = backend_class("example-catalog")
    if backend is None:
        pytest.fail("example-catalog is not installed: run `pip install -e examples/gpux-registry-example`")
    return backend


def configured(backend_class_, **values):
    return backend_class_(backend_class_.clean_config(values, context=BackendContext()))


def test_example_plugin_is_found_through_its_entry_point(example_class):
    assert example_class.__module__ == "gpux_registry_example.backend"
    assert "example-catalog" in available_backends()


@pytest.mark.parametrize("page_size", [1, 2, 5, 100])
def test_example_plugin_passes_the_conformance_kit(example_class, page_size):
    assert_conforms(configured(example_class, page_size=page_size), missing_model_id="acme/nothing")


def test_example_plugin_pages_hold_page_size_models(example_class):
    pages = list(configured(example_class, page_size=2).iter_models())
    assert [len(page.models) for page in pages] == [2, 2, 1]
    assert pages[-1].cursor is None


def test_example_plugin_streams_files_matching_their_sha256(example_class):
    backend = configured(example_class)
    model = backend.get_model("acme/sentiment")
    file = model.versions[0].files[0]
    data = read_all(backend.open_file(model.id, "1", file))
    assert len(data) == file.size
    assert hashlib.sha256(data).hexdigest() == file.sha256


def test_example_plugin_refuses_an_unknown_tag_naming_the_field(example_class):
    with pytest.raises(ConfigurationError) as caught:
        example_class.clean_config({"tag": "quantum"}, context=BackendContext())
    assert caught.value.field == "tag"


def test_example_plugin_answers_not_found_for_a_missing_version(example_class):
    backend = configured(example_class)
    with pytest.raises(NotFound):
        backend.list_files("acme/sentiment", "99")
