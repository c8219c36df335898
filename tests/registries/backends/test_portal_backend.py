"""Federation with a second GPUX Portal (this project under gunicorn, its own database), through its REST API."""

from __future__ import annotations

import hashlib

import pytest

from apps.registries.backends.portal import PortalBackend
from apps.registries.sdk import (
    BackendContext,
    ConfigurationError,
    NetworkPolicy,
    NotFound,
    RemoteFile,
    Unauthorized,
    UnsafeURL,
)
from apps.registries.sdk.http import read_all
from apps.registries.sdk.testing import assert_conforms
from tests.peers.portal import PeerPortal, peer_portal  # noqa: F401  (the session fixture)
from tests.peers.static_server import iris_model_path

LOOPBACK = BackendContext(policy=NetworkPolicy(allowed=("127.0.0.1/32",)))


def backend_for(peer: PeerPortal, **values) -> PortalBackend:
    config = PortalBackend.clean_config({"url": peer.url, **values}, context=LOOPBACK)
    return PortalBackend(config, context=LOOPBACK)


def listed_ids(backend: PortalBackend) -> list[str]:
    return [model.id for page in backend.iter_models() for model in page.models]


@pytest.mark.parametrize("page_size", [1, 100])
@pytest.mark.slow
def test_second_portal_passes_the_conformance_kit(peer_portal: PeerPortal, page_size):  # noqa: F811
    backend = backend_for(peer_portal, token=peer_portal.seed["syncer_token"], page_size=page_size)
    assert_conforms(backend, missing_model_id="acme/nothing")


@pytest.mark.slow
def test_token_sees_its_organization_private_models_and_public_ones_only(peer_portal):  # noqa: F811
    ids = listed_ids(backend_for(peer_portal, token=peer_portal.seed["syncer_token"]))
    assert ids == ["acme/internal", "acme/iris", "rival/open"]


@pytest.mark.slow
def test_private_model_of_another_organization_is_neither_listed_nor_fetched(peer_portal):  # noqa: F811
    backend = backend_for(peer_portal, token=peer_portal.seed["syncer_token"])
    assert "rival/secret" not in listed_ids(backend)
    with pytest.raises(NotFound):
        backend.get_model("rival/secret")


@pytest.mark.slow
def test_the_other_organization_token_sees_its_own_private_model(peer_portal):  # noqa: F811
    ids = listed_ids(backend_for(peer_portal, token=peer_portal.seed["rival_token"]))
    assert ids == ["acme/iris", "rival/open", "rival/secret"]


@pytest.mark.slow
def test_without_a_token_only_public_models_are_listed(peer_portal):  # noqa: F811
    assert listed_ids(backend_for(peer_portal)) == ["acme/iris", "rival/open"]


@pytest.mark.slow
def test_organization_filter_lists_that_organization_only(peer_portal):  # noqa: F811
    backend = backend_for(peer_portal, token=peer_portal.seed["syncer_token"], organization="acme")
    assert listed_ids(backend) == ["acme/internal", "acme/iris"]
    with pytest.raises(NotFound):
        backend.get_model("rival/open")


@pytest.mark.slow
def test_only_published_versions_are_federated_with_their_aliases(peer_portal):  # noqa: F811
    model = backend_for(peer_portal).get_model("acme/iris")
    assert [(version.label, version.aliases) for version in model.versions] == [("1", ()), ("2", ("production",))]
    assert model.card.startswith("# Iris")
    assert (model.task, model.tags, model.license) == ("tabular-classification", ("iris", "tabular"), "mit")


@pytest.mark.slow
def test_files_carry_the_remote_sha256_and_stream_the_real_iris_model(peer_portal):  # noqa: F811
    backend = backend_for(peer_portal)
    files = {file.path: file for file in backend.list_files("acme/iris", "2")}
    assert sorted(files) == ["config/labels.json", "model.onnx"]
    iris = iris_model_path().read_bytes()
    assert files["model.onnx"].sha256 == hashlib.sha256(iris).hexdigest()
    assert files["model.onnx"].size == len(iris)
    assert read_all(backend.open_file("acme/iris", "2", files["model.onnx"])) == iris


@pytest.mark.slow
def test_file_of_an_unpublished_version_is_not_listed(peer_portal):  # noqa: F811
    with pytest.raises(NotFound):
        backend_for(peer_portal).list_files("acme/iris", "3")


@pytest.mark.slow
def test_missing_file_raises_not_found(peer_portal):  # noqa: F811
    with pytest.raises(NotFound):
        read_all(backend_for(peer_portal).open_file("acme/iris", "1", RemoteFile(path="nothing.onnx")))


@pytest.mark.slow
def test_wrong_token_raises_unauthorized(peer_portal):  # noqa: F811
    backend = backend_for(peer_portal, token="gpux_wrong_token0000000000000000")
    with pytest.raises(Unauthorized):
        backend.check()


@pytest.mark.slow
def test_model_ids_that_are_not_owner_and_name_are_not_found(peer_portal):  # noqa: F811
    backend = backend_for(peer_portal)
    for model_id in ("acme", "acme/iris/versions", "../acme/iris", "acme/"):
        with pytest.raises(NotFound):
            backend.get_model(model_id)


# --- configuration (no peer needed) --------------------------------------------------------------------------
def test_portal_url_on_loopback_is_refused_by_the_default_policy():
    with pytest.raises(UnsafeURL):
        PortalBackend.clean_config({"url": "http://127.0.0.1:8000"}, context=BackendContext())


def test_organization_must_be_a_slug():
    with pytest.raises(ConfigurationError) as caught:
        PortalBackend.clean_config({"url": "https://8.8.8.8", "organization": "a b"}, context=BackendContext())
    assert caught.value.field == "organization"


def test_a_pasted_api_url_is_taken_as_the_portal_root():
    backend = PortalBackend({"url": "https://portal.example.com/api/v1/"})
    assert backend.api_url("models/") == "https://portal.example.com/api/v1/models/"
