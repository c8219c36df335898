"""The Access panel of a model's, a deployment's and a registry's page: admins and owners grant and revoke, those
who may change the object read who has access, the others do not see the panel; refusals name the field."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.marketplace import services as catalog
from apps.marketplace.models import Model
from apps.organizations import services as org_services
from apps.organizations.grants import grant_access

pytestmark = pytest.mark.django_db


@pytest.fixture
def iris(world):
    return catalog.create_model(organization=world.org, actor=world.user("member"), name="iris")


def page_as(user, url):
    client = Client()
    client.force_login(user)
    return client, client.get(url)


MODEL_PAGE = "/models/acme/iris/"


def test_an_admin_sees_the_panel_with_its_grant_form(world, iris):
    _client, response = page_as(world.user("admin"), MODEL_PAGE)
    html = response.content.decode()
    assert 'id="access"' in html and 'id="grant-form"' in html
    assert "No grants yet." in html


def test_a_member_reads_the_grants_without_the_form(world, iris):
    grant_access(obj=iris, actor=world.user("owner"), grantee_type="user", grantee="outsider-user", permission="run")
    _client, response = page_as(world.user("member"), MODEL_PAGE)
    html = response.content.decode()
    assert 'id="grant-list"' in html and "outsider-user" in html
    assert 'id="grant-form"' not in html and "Revoke" not in html
    assert "only admins and owners of acme manage them" in html


def test_a_viewer_does_not_see_the_panel(world, iris):
    _client, response = page_as(world.user("viewer"), MODEL_PAGE)
    assert response.status_code == 200
    assert 'id="access"' not in response.content.decode()


def test_an_admin_grants_a_team_from_the_page_and_revokes_it(world, iris):
    viewer = world.user("viewer")
    team = org_services.create_team(actor=world.user("owner"), organization=world.org, slug="vision", name="Vision")
    org_services.add_team_member(actor=world.user("owner"), team=team, user=viewer)
    client, _ = page_as(world.user("admin"), MODEL_PAGE)
    body = {"grantee_type": "team", "grantee": "vision", "permission": "run"}
    response = client.post(reverse("catalog-model-access", args=["acme", "iris"]), body, follow=True)
    assert response.redirect_chain[-1][0].endswith("/models/acme/iris/#access")
    html = response.content.decode()
    assert "Granted: team Vision (acme/vision) sees and runs it (run)." in html
    assert 'data-grantee="acme/vision" data-permission="run"' in html
    assert Model.objects.restrict(viewer, "run").filter(pk=iris.pk).exists()
    revoke = {"grantee_type": "team", "grantee": "acme/vision", "permission": "run"}
    response = client.post(reverse("catalog-model-access-revoke", args=["acme", "iris"]), revoke, follow=True)
    assert "Revoked: team Vision (acme/vision) no longer has run access." in response.content.decode()
    assert not Model.objects.restrict(viewer, "run").filter(pk=iris.pk).exists()
    actions = list(AuditEvent.objects.filter(organization=world.org).values_list("action", flat=True))
    assert actions[-2:] == ["model.access_granted", "model.access_revoked"]


def test_a_refused_grant_says_which_field_and_why(world, iris):
    client, _ = page_as(world.user("admin"), MODEL_PAGE)
    body = {"grantee_type": "user", "grantee": "nobody-at-all", "permission": "run"}
    response = client.post(reverse("catalog-model-access", args=["acme", "iris"]), body, follow=True)
    assert "grantee: No user has the handle “nobody-at-all”." in response.content.decode()
    assert not AuditEvent.objects.filter(action="model.access_granted").exists()


def test_a_member_may_not_grant_from_the_page(world, iris):
    client, _ = page_as(world.user("member"), MODEL_PAGE)
    body = {"grantee_type": "user", "grantee": "outsider-user", "permission": "run"}
    response = client.post(reverse("catalog-model-access", args=["acme", "iris"]), body)
    assert response.status_code == 403


def test_the_registry_page_has_the_panel_for_its_admins(world):
    from apps.registries import services as registries

    registries.create_registry(
        organization=world.org,
        actor=world.user("owner"),
        backend="example-catalog",
        slug="examples",
        name="Examples",
        config={"page_size": 2},
    )
    _client, response = page_as(world.user("admin"), reverse("org-registry", args=["acme", "examples"]))
    html = response.content.decode()
    assert 'id="grant-form"' in html
    assert '<option value="run">' not in html  # a registry has no run
