"""Metadata mode: a synced model's files stay upstream until someone downloads one; then it is fetched, checked,
stored and served from the artifact store ever after."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.marketplace.models import VersionFile
from apps.registries.models import RemoteFile
from tests.conftest import api_client_for
from tests.peers.faulty_registry import FaultyRegistry
from tests.registries.support import make_registry, run_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(settings):
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with FaultyRegistry() as registry:
        registry.add_model("acme/iris", files={"model.onnx": b"onnx bytes " * 1000})
        yield registry


def download_url(model, path="model.onnx", label="1"):
    return reverse(
        "api:model-version-file-detail",
        kwargs={"owner": model.organization.slug, "name": model.name, "label": label, "path": path},
    )


@pytest.fixture
def synced(world, server):
    registry = make_registry(
        world.org, world.user("owner"), backend="http-index", slug="idx", config={"url": server.url}
    )
    sync = run_sync(registry)
    assert sync.created == 1
    return registry.links.get().model


def test_the_first_download_fetches_the_file_and_later_ones_are_served_from_the_store(world, server, synced):
    client = api_client_for(world.user("viewer"))
    assert not VersionFile.objects.filter(version__model=synced).exists()

    first = client.get(download_url(synced))
    assert first.status_code == 200
    assert b"".join(first.streaming_content) == b"onnx bytes " * 1000
    assert VersionFile.objects.filter(version__model=synced, path="model.onnx").count() == 1
    assert RemoteFile.objects.get(version__model=synced).fetched_at is not None

    file_requests = len(server.requests_to(FaultyRegistry.file_path("acme/iris", "1", "model.onnx")))
    second = client.get(download_url(synced))
    assert second.status_code == 200
    assert len(server.requests_to(FaultyRegistry.file_path("acme/iris", "1", "model.onnx"))) == file_requests


def test_a_registry_that_fails_the_first_download_answers_502_and_caches_nothing(world, server, synced):
    server.faults.corrupt_files.add(FaultyRegistry.file_path("acme/iris", "1", "model.onnx"))
    response = api_client_for(world.user("viewer")).get(download_url(synced))

    assert response.status_code == 502
    assert "checksum" in response.json()["detail"].lower() or "sha-256" in response.json()["detail"].lower()
    assert not VersionFile.objects.filter(version__model=synced).exists()
    assert "SHA-256" in RemoteFile.objects.get(version__model=synced).fetch_error


def test_an_unlisted_path_is_404_and_an_outsider_gets_404_before_any_fetch(world, server, synced):
    assert api_client_for(world.user("viewer")).get(download_url(synced, path="other.onnx")).status_code == 404
    before = len(server.requests)
    assert api_client_for(world.user("outsider")).get(download_url(synced)).status_code == 404
    assert len(server.requests) == before


def test_the_version_page_lists_files_still_upstream_with_their_download_link(world, server, synced):
    from django.test import Client

    client = Client()
    client.force_login(world.user("viewer"))
    page_url = reverse("catalog-version", kwargs={"owner": "acme", "name": synced.name, "label": "1"})
    page = client.get(page_url).content.decode()
    assert 'id="upstream-file-table"' in page and "No files yet" not in page
    assert download_url(synced) in page

    assert client.get(download_url(synced)).status_code == 200  # fetched: now an ordinary file of the version
    page = client.get(page_url).content.decode()
    assert 'id="upstream-file-table"' not in page and 'id="file-table"' in page
