"""A registry's pages are its organization's admins', and a grant from its Access panel opens them to others: view
shows the registry and its sync runs (without the buttons that change it), change also edits, tests and syncs it;
deleting stays the admins'. Without a grant a member gets the admins' 403, as before."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.organizations.grants import grant_access
from apps.registries import services
from apps.registries.models import RegistrySync

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(world):
    return services.create_registry(
        organization=world.org,
        actor=world.user("owner"),
        backend="example-catalog",
        slug="examples",
        name="Examples",
        config={"page_size": 2},
    )


@pytest.fixture
def member(world):
    client = Client()
    client.force_login(world.user("member"))
    return client


def share(world, registry, permission):
    grant_access(
        obj=registry, actor=world.user("owner"), grantee_type="user", grantee="member-user", permission=permission
    )


def url(name, *extra):
    return reverse(name, args=["acme", "examples", *extra])


def test_without_a_grant_a_member_gets_the_admins_403(world, registry, member):
    assert member.get(url("org-registry")).status_code == 403
    assert member.get(url("org-registry-edit")).status_code == 403


def test_a_view_grant_shows_the_registry_and_its_syncs_but_not_its_buttons(world, registry, member):
    share(world, registry, "view")
    sync = services.start_sync(registry=registry, actor=world.user("owner"))
    response = member.get(url("org-registry"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="registry-title"' in html
    assert 'id="sync-now"' not in html and "Delete this registry" not in html and 'id="grant-form"' not in html
    assert member.get(url("org-registry-sync-detail", RegistrySync.objects.get(pk=sync.pk).pk)).status_code == 200
    assert member.get(url("org-registry-edit")).status_code == 403
    assert member.post(url("org-registry-sync")).status_code == 403


def test_a_change_grant_edits_and_syncs_but_does_not_delete(world, registry, member):
    share(world, registry, "change")
    html = member.get(url("org-registry")).content.decode()
    assert 'id="sync-now"' in html and "Delete this registry" not in html
    assert member.get(url("org-registry-edit")).status_code == 200
    started = member.post(url("org-registry-sync"))
    assert started.status_code == 302 and started["Location"] == url("org-registry")
    assert RegistrySync.objects.filter(registry=registry).exists()
    assert member.post(url("org-registry-delete"), {"confirm_slug": "examples"}).status_code == 403
    assert member.get(reverse("org-registries", args=["acme"])).status_code == 403  # the list stays the admins'


def test_the_api_follows_the_same_grants(world, registry):
    from tests.conftest import api_client_for

    api = api_client_for(world.user("member"))
    detail = reverse("api:org-registry-detail", kwargs={"org_slug": "acme", "registry_slug": "examples"})
    syncs = reverse("api:org-registry-sync-list", kwargs={"org_slug": "acme", "registry_slug": "examples"})
    assert api.get(detail).status_code == 403
    share(world, registry, "view")
    assert api.get(detail).status_code == 200
    assert api.get(syncs).status_code == 200
    assert api.patch(detail, {"name": "Renamed"}, format="json").status_code == 403
    assert api.post(syncs).status_code == 403
    share(world, registry, "change")
    assert api.patch(detail, {"name": "Renamed"}, format="json").status_code == 200
    assert api.post(syncs).status_code == 202
    assert api.delete(detail).status_code == 403
    listing = reverse("api:org-registry-list", kwargs={"org_slug": "acme"})
    assert api.get(listing).status_code == 403  # the list stays the admins'
