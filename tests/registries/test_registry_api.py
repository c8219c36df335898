"""The registries API as an organization admin uses it: configure, test the connection, sync, read history."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.core.access import Visibility
from apps.core.jobs import Job, JobStatus
from apps.marketplace.models import Model
from apps.registries.models import Registry, RegistrySync
from tests.conftest import api_client_for
from tests.peers.faulty_registry import FaultyRegistry

pytestmark = pytest.mark.django_db


def registries_url(org="acme"):
    return reverse("api:org-registry-list", kwargs={"org_slug": org})


def registry_url(slug, org="acme"):
    return reverse("api:org-registry-detail", kwargs={"org_slug": org, "registry_slug": slug})


@pytest.fixture
def admin(world):
    return api_client_for(world.user("admin"))


def example(**overrides):
    return {
        "slug": "examples",
        "name": "Examples",
        "backend": "example-catalog",
        "config": {"page_size": 2},
        **overrides,
    }


def test_an_admin_adds_a_registry_and_reads_it_back(admin):
    response = admin.post(registries_url(), example(mode="mirror", sync_interval_minutes=60), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["backend"] == "example-catalog" and body["backend_label"] == "Example catalog"
    assert body["config"] == {"page_size": 2, "tag": None}
    assert body["mode"] == "mirror" and body["next_sync_at"] is not None
    assert admin.get(registry_url("examples")).json()["slug"] == "examples"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"backend": None}, "backend", "Choose a backend"),
        ({"backend": "nope"}, "backend", "not an installed backend"),
        ({"slug": "Not A Slug"}, "slug", "lowercase letters"),
        ({"slug": ""}, "slug", "slug"),
        ({"name": ""}, "name", "name"),
        ({"config": {"page_size": 0}}, "config.page_size", "at least 1"),
        ({"config": {"page_size": "many"}}, "config.page_size", "whole number"),
        ({"config": {"colour": "red"}}, "config.colour", "not a parameter"),
        ({"config": {"tag": "cooking"}}, "config.tag", "No model has the tag"),
        ({"config": [1, 2]}, "config", "object"),
        ({"mode": "copy"}, "mode", "valid choice"),
        ({"model_visibility": "everyone"}, "model_visibility", "valid choice"),
        ({"sync_interval_minutes": 1}, "sync_interval_minutes", "at most every 5 minutes"),
        ({"include_patterns": "x" * 300}, "include_patterns", "at most 200"),
        ({"exclude_patterns": [1, 2]}, "exclude_patterns", "list of text"),
        ({"tags": {"a": 1}}, "tags", "list of text"),
    ],
)
def test_bad_registry_input_answers_400_naming_the_field_and_writes_nothing(admin, body, field, reason):
    response = admin.post(registries_url(), example(**body), format="json")

    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    assert reason.lower() in " ".join(errors[field]).lower()
    assert not Registry.objects.exists()


def test_a_taken_slug_answers_400_on_slug(admin):
    assert admin.post(registries_url(), example(), format="json").status_code == 201
    response = admin.post(registries_url(), example(), format="json")

    assert response.status_code == 400 and "taken" in response.json()["slug"][0]
    assert Registry.objects.count() == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/index.jsonl",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://10.0.0.8/i",
    ],
)
def test_urls_to_loopback_private_or_link_local_addresses_are_refused(admin, url):
    response = admin.post(registries_url(), example(backend="http-index", config={"url": url}), format="json")

    assert response.status_code == 400
    assert "config.url" in response.json()
    assert "allow-list" in response.json()["config.url"][0]
    assert not Registry.objects.exists()


def test_an_operator_allow_list_lets_a_private_address_through(admin, settings):
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    response = admin.post(
        registries_url(), example(backend="http-index", config={"url": "http://127.0.0.1:8000/i.jsonl"}), format="json"
    )
    assert response.status_code == 201, response.json()


def test_a_non_http_url_is_refused(admin):
    response = admin.post(
        registries_url(), example(backend="http-index", config={"url": "file:///etc/passwd"}), format="json"
    )
    assert response.status_code == 400 and "http" in response.json()["config.url"][0]


def test_sensitive_parameters_are_write_only_and_kept_when_left_out(admin, settings):
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    body = example(backend="http-index", config={"url": "http://127.0.0.1:9/i.jsonl", "token": "s3cret-value"})
    created = admin.post(registries_url(), body, format="json").json()

    assert "s3cret-value" not in json.dumps(created)
    assert created["credentials_set"] == ["token"]
    changed = admin.patch(registry_url("examples"), {"config": {"page_size": 50}}, format="json").json()
    assert changed["config"]["page_size"] == 50 and changed["credentials_set"] == ["token"]
    cleared = admin.patch(registry_url("examples"), {"config": {"token": ""}}, format="json").json()
    assert cleared["credentials_set"] == []


def test_the_backend_of_a_registry_cannot_change(admin):
    admin.post(registries_url(), example(), format="json")
    response = admin.patch(registry_url("examples"), {"backend": "http-index"}, format="json")
    assert response.status_code == 400 and "backend" in response.json()


def test_changing_the_visibility_applies_to_the_models_it_synced(admin, world):
    from tests.registries.support import run_sync

    admin.post(registries_url(), example(), format="json")
    run_sync(Registry.objects.get())
    admin.patch(registry_url("examples"), {"model_visibility": "public"}, format="json")

    assert set(Model.objects.filter(source_registry="examples").values_list("visibility", flat=True)) == {
        Visibility.PUBLIC
    }


def test_starting_a_sync_answers_202_with_the_run_and_409_while_it_runs(admin):
    admin.post(registries_url(), example(), format="json")
    url = reverse("api:org-registry-sync-list", kwargs={"org_slug": "acme", "registry_slug": "examples"})
    first = admin.post(url)

    assert first.status_code == 202, first.json()
    assert first.json()["status"] == "queued" and first.json()["job_url"].endswith("/")
    again = admin.post(url)
    assert again.status_code == 409 and again.json()["code"] == "sync_running"
    assert RegistrySync.objects.count() == 1
    job = Job.objects.get()
    assert job.queue == "sync" and job.kind == "registries.sync"


def test_the_history_lists_runs_with_counts_and_errors(admin):
    from tests.registries.support import run_sync

    admin.post(registries_url(), example(), format="json")
    registry = Registry.objects.get()
    run_sync(registry)
    run_sync(registry)
    url = reverse("api:org-registry-sync-list", kwargs={"org_slug": "acme", "registry_slug": "examples"})
    runs = admin.get(url).json()["results"]

    assert [(run["status"], run["created"], run["unchanged"]) for run in runs] == [
        (JobStatus.SUCCEEDED, 0, 5),
        (JobStatus.SUCCEEDED, 5, 0),
    ]
    detail = admin.get(
        reverse(
            "api:org-registry-sync-detail",
            kwargs={"org_slug": "acme", "registry_slug": "examples", "sync_id": runs[1]["id"]},
        )
    ).json()
    assert detail["complete"] is True and detail["errors"] == []
    assert admin.get(registry_url("examples")).json()["model_count"] == 5


def test_checking_the_connection_reports_wrong_credentials_clearly(admin, settings):
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with FaultyRegistry(token="right") as server:
        server.add_models(1)
        admin.post(
            registries_url(), example(backend="http-index", config={"url": server.url, "token": "wrong"}), format="json"
        )
        url = reverse("api:org-registry-check", kwargs={"org_slug": "acme", "registry_slug": "examples"})
        refused = admin.post(url).json()
        admin.patch(registry_url("examples"), {"config": {"token": "right"}}, format="json")
        accepted = admin.post(url).json()

    assert refused["ok"] is False and "refused the credentials (HTTP 401)" in refused["message"]
    assert accepted["ok"] is True
    assert Registry.objects.get().connection_error == ""


def test_the_backends_list_shows_every_installed_backend_and_its_parameters(admin):
    backends = {backend["name"]: backend for backend in admin.get(reverse("api:registry-backend-list")).json()}

    for name in ("http-index", "huggingface", "onnx-model-zoo", "example-catalog"):
        assert name in backends
    token = next(p for p in backends["http-index"]["parameters"] if p["name"] == "token")
    assert token["sensitive"] is True and token["default"] is None
    assert "author" not in {p["name"] for p in backends["onnx-model-zoo"]["parameters"]}  # the preset sets it


def test_deleting_a_registry_keeps_its_models_in_the_catalog(admin):
    from tests.registries.support import run_sync

    admin.post(registries_url(), example(), format="json")
    run_sync(Registry.objects.get())
    assert admin.delete(registry_url("examples")).status_code == 204

    assert not Registry.objects.exists()
    assert Model.objects.filter(source_registry="examples").count() == 5
