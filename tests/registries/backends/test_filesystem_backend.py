"""The file system backend over a real directory tree holding the iris ONNX model."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from apps.registries.backends.filesystem import FileSystemBackend
from apps.registries.sdk import BackendContext, ConfigurationError, NotFound, RemoteFile, Unavailable
from apps.registries.sdk.http import read_all
from apps.registries.sdk.testing import assert_conforms
from tests.peers.static_server import iris_model_path


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    """The directory the operator opened to registries; the registry's root is ``volume/models``."""
    root = tmp_path / "volume" / "models"
    root.mkdir(parents=True)
    return tmp_path / "volume"


@pytest.fixture
def context(volume: Path) -> BackendContext:
    return BackendContext(file_roots=(volume,))


def add_version(root: Path, model_id: str, label: str, files: dict[str, bytes | Path] | None = None) -> Path:
    directory = root / model_id / label
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {"model.onnx": iris_model_path()}).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content)
    return directory


def backend_for(root: Path, context: BackendContext, **values) -> FileSystemBackend:
    config = FileSystemBackend.clean_config({"path": str(root), **values}, context=context)
    return FileSystemBackend(config, context=context)


@pytest.fixture
def catalog(volume: Path) -> Path:
    root = volume / "models"
    for name in ("digits", "iris", "sentiment"):
        add_version(root, f"acme/{name}", "1")
        add_version(root, f"acme/{name}", "2", {"model.onnx": iris_model_path(), "onnx/int8.onnx": b"int8 weights"})
    add_version(root, "labs/anomalies", "10")
    add_version(root, "labs/anomalies", "9")
    add_version(root, "solo", "v1", {"weights.onnx": b"solo"})
    (root / "acme" / "iris" / "model.json").write_text(
        json.dumps({"name": "Iris", "task": "tabular-classification", "tags": ["iris"], "license": "mit"})
    )
    (root / "acme" / "iris" / "README.md").write_text("# Iris\n\nLogistic regression.\n")
    gpux_yml = "name: Sentiment\nversions:\n  '1':\n    description: First\n"
    (root / "acme" / "sentiment" / "gpux.yml").write_text(gpux_yml)
    return root


@pytest.mark.parametrize("page_size", [1, 2, 500])
def test_file_system_registry_passes_the_conformance_kit(catalog, context, page_size):
    assert_conforms(backend_for(catalog, context, page_size=page_size), missing_model_id="acme/nothing")


def test_models_are_the_directories_above_their_versions_in_natural_order(catalog, context):
    backend = backend_for(catalog, context)
    ids = [model.id for page in backend.iter_models() for model in page.models]
    assert ids == ["acme/digits", "acme/iris", "acme/sentiment", "labs/anomalies", "solo"]
    anomalies = backend.get_model("labs/anomalies")
    assert [version.label for version in anomalies.versions] == ["9", "10"]


def test_metadata_comes_from_model_json_gpux_yml_and_readme(catalog, context):
    backend = backend_for(catalog, context)
    iris = backend.get_model("acme/iris")
    assert (iris.name, iris.task, iris.tags, iris.license) == ("Iris", "tabular-classification", ("iris",), "mit")
    assert iris.card.startswith("# Iris")
    sentiment = backend.get_model("acme/sentiment")
    assert sentiment.name == "Sentiment"
    assert sentiment.versions[0].description == "First"
    assert backend.get_model("acme/digits").name == "digits"


def test_files_are_listed_recursively_with_their_size(catalog, context):
    files = backend_for(catalog, context).list_files("acme/iris", "2")
    assert [(file.path, file.size) for file in files] == [
        ("model.onnx", iris_model_path().stat().st_size),
        ("onnx/int8.onnx", len(b"int8 weights")),
    ]


def test_sha256sums_file_gives_checksums_and_is_not_a_model_file(catalog, context):
    version = catalog / "solo" / "v1"
    (version / "SHA256SUMS").write_text(f"{hashlib.sha256(b'solo').hexdigest()}  weights.onnx\n")
    [file] = backend_for(catalog, context).list_files("solo", "v1")
    assert file.sha256 == hashlib.sha256(b"solo").hexdigest()


def test_streamed_file_is_the_real_iris_model(catalog, context):
    backend = backend_for(catalog, context)
    file = backend.list_files("acme/iris", "1")[0]
    assert read_all(backend.open_file("acme/iris", "1", file)) == iris_model_path().read_bytes()


def test_fingerprint_changes_when_a_file_changes(catalog, context):
    backend = backend_for(catalog, context)
    before = backend.get_model("solo").fingerprint
    (catalog / "solo" / "v1" / "weights.onnx").write_bytes(b"solo, retrained")
    assert backend.get_model("solo").fingerprint != before


def test_symlinked_version_directory_is_an_alias_of_its_target(catalog, context):
    (catalog / "acme" / "iris" / "latest").symlink_to("2")
    versions = backend_for(catalog, context).get_model("acme/iris").versions
    assert [(version.label, version.aliases) for version in versions] == [("1", ()), ("2", ("latest",))]


def test_unreadable_model_json_skips_that_model_and_reports_it(catalog, context):
    (catalog / "acme" / "digits" / "model.json").write_text("{not json")
    backend = backend_for(catalog, context)
    ids = [model.id for page in backend.iter_models() for model in page.models]
    assert "acme/digits" not in ids and "acme/iris" in ids
    [skipped] = backend.skipped
    assert skipped.model_id == "acme/digits"
    assert "model.json cannot be read" in skipped.reason


# --- the root ----------------------------------------------------------------------------------------------
def test_path_outside_the_operator_roots_is_refused(tmp_path, context):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ConfigurationError) as caught:
        FileSystemBackend.clean_config({"path": str(elsewhere)}, context=context)
    assert caught.value.field == "path"


def test_path_with_dot_dot_out_of_the_roots_is_refused(volume, context):
    with pytest.raises(ConfigurationError):
        FileSystemBackend.clean_config({"path": str(volume / "models" / ".." / "..")}, context=context)


def test_symlink_to_a_directory_outside_the_roots_is_refused_as_a_root(tmp_path, volume, context):
    outside = tmp_path / "secret"
    outside.mkdir()
    (volume / "models-link").symlink_to(outside)
    with pytest.raises(ConfigurationError):
        FileSystemBackend.clean_config({"path": str(volume / "models-link")}, context=context)


def test_no_roots_configured_refuses_every_path(volume):
    with pytest.raises(ConfigurationError, match="none are configured"):
        FileSystemBackend.clean_config({"path": str(volume)}, context=BackendContext())


# --- nothing escapes the root ------------------------------------------------------------------------------
@pytest.mark.parametrize("model_id", ["../volume/models/acme/iris", "acme/../acme/iris", "/etc", "acme//iris", ".git"])
def test_model_ids_that_step_out_or_around_are_not_found(catalog, context, model_id):
    with pytest.raises(NotFound):
        backend_for(catalog, context).get_model(model_id)


@pytest.mark.parametrize("locator", ["../../../../../../etc/passwd", "../2/model.onnx", "/etc/passwd"])
def test_file_locators_with_dot_dot_are_not_found(catalog, context, locator):
    backend = backend_for(catalog, context)
    with pytest.raises(NotFound):
        read_all(backend.open_file("acme/iris", "1", RemoteFile(path="x", locator=locator)))


def test_symlinked_file_that_leads_outside_the_root_is_neither_listed_nor_served(tmp_path, catalog, context):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    os.symlink(secret, catalog / "solo" / "v1" / "leak.txt")
    backend = backend_for(catalog, context)
    assert [file.path for file in backend.list_files("solo", "v1")] == ["weights.onnx"]
    with pytest.raises(NotFound, match="outside"):
        read_all(backend.open_file("solo", "v1", RemoteFile(path="leak.txt", locator="leak.txt")))


def test_symlinked_model_directory_that_leads_outside_the_root_is_not_listed(tmp_path, catalog, context):
    outside = tmp_path / "outside-model"
    add_version(outside.parent, outside.name, "1")
    (catalog / "acme" / "stolen").symlink_to(outside)
    backend = backend_for(catalog, context)
    assert "acme/stolen" not in [model.id for page in backend.iter_models() for model in page.models]
    with pytest.raises(NotFound):
        backend.get_model("acme/stolen")


def test_root_that_disappeared_is_unavailable(catalog, context):
    backend = backend_for(catalog, context)
    shutil.rmtree(catalog)
    with pytest.raises(Unavailable):
        list(backend.iter_models())
