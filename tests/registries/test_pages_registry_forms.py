"""The registry pages as an admin uses them: the form is the backend's schema, errors show on their field and
write nothing, secrets are never shown back, and the detail page shows status and history."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.registries.models import Registry
from tests.registries.support import run_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(world, settings):
    settings.REGISTRY_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    client = Client()
    client.force_login(world.user("admin"))
    return client


def form(**overrides):
    return {
        "backend": "http-index",
        "name": "Bucket index",
        "slug": "bucket",
        "mode": "metadata",
        "model_visibility": "internal",
        "sync_interval_minutes": 0,
        "enabled": "on",
        "config__url": "http://127.0.0.1:9/index.jsonl",
        "config__token": "tok-123-secret",
        "config__page_size": 500,
        "config__format": "auto",
        **overrides,
    }


def create_url():
    return reverse("org-registry-create", kwargs={"org_slug": "acme"})


def test_the_list_starts_empty_and_says_what_a_registry_is(admin):
    page = admin.get(reverse("org-registries", kwargs={"org_slug": "acme"}))
    assert page.status_code == 200 and b"No registries yet" in page.content


def test_the_list_searches_registries_by_name_or_slug_with_their_model_counts(admin, world):
    from tests.registries.support import ScriptedBackend, make_registry, scripted_model

    ScriptedBackend.CATALOGS["hub-mirror"] = [scripted_model("a/one"), scripted_model("a/two")]
    run_sync(make_registry(world.org, world.user("owner"), slug="hub-mirror", name="Hub mirror"))
    make_registry(world.org, world.user("owner"), slug="zoo", name="Model zoo")
    url = reverse("org-registries", kwargs={"org_slug": "acme"})

    by_slug = admin.get(url, {"q": "mirror"}).context["page_obj"].object_list
    assert [(r.slug, r.model_count) for r in by_slug] == [("hub-mirror", 2)]
    assert [r.slug for r in admin.get(url, {"q": "zoo"}).context["page_obj"].object_list] == ["zoo"]
    assert b"No registry matches" in admin.get(url, {"q": "nothing-like-it"}).content


def test_the_add_page_offers_every_installed_backend_then_its_form(admin):
    choices = admin.get(create_url())
    for label in (b"HTTP index", b"Hugging Face", b"MLflow", b"Example catalog"):
        assert label in choices.content
    http_form = admin.get(create_url(), {"backend": "http-index"})
    assert b'name="config__url"' in http_form.content and b'type="password"' in http_form.content
    assert admin.get(create_url(), {"backend": "nope"}).status_code == 400


def test_adding_a_registry_redirects_to_it_and_never_shows_the_token(admin):
    response = admin.post(create_url(), form())
    assert response.status_code == 302, response.content.decode()[:2000]
    page = admin.get(response["Location"])
    assert b"Bucket index" in page.content and b"set (hidden)" in page.content
    assert b"tok-123-secret" not in page.content
    edit = admin.get(reverse("org-registry-edit", kwargs={"org_slug": "acme", "registry_slug": "bucket"}))
    assert b"tok-123-secret" not in edit.content


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"config__url": "http://169.254.169.254/latest/"}, "config__url", "link-local"),
        ({"config__url": ""}, "config__url", "required"),
        ({"config__page_size": 0}, "config__page_size", "greater than or equal to 1"),
        ({"slug": "Bad Slug"}, "slug", "lowercase"),
        ({"sync_interval_minutes": 2}, "sync_interval_minutes", "at most every 5 minutes"),
    ],
)
def test_a_bad_value_shows_on_its_field_and_writes_nothing(admin, overrides, field, message):
    response = admin.post(create_url(), form(**overrides))

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert not Registry.objects.exists()


def test_editing_without_retyping_the_token_keeps_it(admin):
    admin.post(create_url(), form())
    edit_url = reverse("org-registry-edit", kwargs={"org_slug": "acme", "registry_slug": "bucket"})
    data = {key: value for key, value in form(name="Renamed", config__token="").items() if key not in ("slug",)}
    assert admin.post(edit_url, data).status_code == 302

    registry = Registry.objects.get()
    assert registry.name == "Renamed"
    from apps.registries.crypto import decrypt_credentials

    assert decrypt_credentials(registry.credentials) == {"token": "tok-123-secret"}
    admin.post(edit_url, {**data, "config__token__clear": "on"})
    registry.refresh_from_db()
    assert registry.credentials == ""


def test_deleting_needs_the_slug_typed(admin):
    admin.post(create_url(), form())
    url = reverse("org-registry-delete", kwargs={"org_slug": "acme", "registry_slug": "bucket"})
    admin.post(url, {"confirm_slug": "wrong"})
    assert Registry.objects.exists()
    admin.post(url, {"confirm_slug": "bucket"})
    assert not Registry.objects.exists()


def test_the_detail_page_shows_the_history_and_a_run_shows_its_errors(admin, world):
    from tests.registries.support import ScriptedBackend, make_registry, scripted_model

    ScriptedBackend.CATALOGS["scripted"] = [scripted_model("ok/one"), scripted_model("bad/" + "x" * 400)]
    registry = make_registry(world.org, world.user("owner"))
    sync = run_sync(registry)
    page = admin.get(reverse("org-registry", kwargs={"org_slug": "acme", "registry_slug": "scripted"}))
    assert b'id="sync-history"' in page.content and b"succeeded" in page.content

    detail = admin.get(
        reverse(
            "org-registry-sync-detail", kwargs={"org_slug": "acme", "registry_slug": "scripted", "sync_id": sync.pk}
        )
    )
    assert b'id="sync-errors"' in detail.content and b"at most 300 are kept" in detail.content
