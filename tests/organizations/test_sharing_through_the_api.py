"""Sharing a model, a deployment or a registry through the API: grants to a user, a team or another organization,
listed, revoked, audited in the owner's chain, and refused with 400 naming the field when the input is wrong."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.access import Role
from apps.marketplace import services as catalog
from apps.marketplace.models import Model
from apps.organizations import services as org_services
from apps.registries import services as registry_services
from apps.registries.models import Registry
from tests.conftest import api_client_for
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def iris(world):
    return catalog.create_model(organization=world.org, actor=world.user("member"), name="iris")


@pytest.fixture
def grants_url(iris):
    return reverse("api:model-grant-list", kwargs={"owner": "acme", "name": "iris"})


@pytest.fixture
def admin(world):
    return api_client_for(world.user("admin"))


def test_an_admin_grants_run_to_a_user_and_the_user_may_run_it(world, iris, grants_url, admin):
    outsider = world.user("outsider")
    response = admin.post(grants_url, {"grantee_type": "user", "grantee": outsider.handle, "permission": "run"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["grantee"] == outsider.handle and body["permission"] == "run"
    assert body["url"].endswith(f"/grants/user/{outsider.handle}/run/")
    assert Model.objects.restrict(outsider, "run").filter(pk=iris.pk).exists()
    listed = admin.get(grants_url).json()
    assert [(g["grantee_type"], g["grantee"], g["permission"]) for g in listed] == [("user", outsider.handle, "run")]


def test_a_team_is_named_by_its_slug_or_as_org_slash_team(world, iris, grants_url, admin):
    team = org_services.create_team(actor=world.user("owner"), organization=world.org, slug="vision", name="Vision")
    first = admin.post(grants_url, {"grantee_type": "team", "grantee": "vision", "permission": "view"})
    assert first.status_code == 201, first.content
    again = admin.post(grants_url, {"grantee_type": "team", "grantee": "acme/vision", "permission": "change"})
    assert again.status_code == 201, again.content
    listed = admin.get(grants_url).json()
    assert {(g["grantee"], g["permission"]) for g in listed} == {("acme/vision", "view"), ("acme/vision", "change")}
    assert team.name in listed[0]["grantee_label"]


def test_granting_and_revoking_write_events_in_the_owners_audit_chain(world, iris, grants_url, admin):
    globex = OrganizationFactory(slug="globex", name="Globex")
    admin.post(grants_url, {"grantee_type": "organization", "grantee": "globex", "permission": "view"})
    revoked = admin.delete(f"{grants_url}organization/globex/view/")
    assert revoked.status_code == 204, revoked.content
    events = list(AuditEvent.objects.filter(organization=world.org, action__startswith="model.access_"))
    assert [event.action for event in events] == ["model.access_granted", "model.access_revoked"]
    assert events[0].metadata == {"grantee_type": "organization", "grantee": "globex", "permission": "view"}
    assert events[0].actor == world.user("admin")
    assert not AuditEvent.objects.filter(organization=globex).exists()


def test_revoking_removes_access_at_once(world, iris, grants_url, admin):
    globex = OrganizationFactory(slug="globex", name="Globex")
    them = UserFactory(handle="globex-member")
    MembershipFactory(organization=globex, user=them, role=Role.MEMBER)
    admin.post(grants_url, {"grantee_type": "organization", "grantee": "globex", "permission": "run"})
    theirs = api_client_for(them)
    detail = reverse("api:model-detail", kwargs={"owner": "acme", "name": "iris"})
    assert theirs.get(detail).status_code == 200
    admin.delete(f"{grants_url}organization/globex/run/")
    assert theirs.get(detail).status_code == 404


def test_revoking_a_grant_that_does_not_exist_is_a_404(world, iris, grants_url, admin):
    response = admin.delete(f"{grants_url}user/{world.user('outsider').handle}/run/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grantee_type": "user", "grantee": "nobody-here", "permission": "run"}, "grantee"),
        ({"grantee_type": "team", "grantee": "no-such-team", "permission": "run"}, "grantee"),
        ({"grantee_type": "organization", "grantee": "no-such-org", "permission": "run"}, "grantee"),
        ({"grantee_type": "group", "grantee": "x", "permission": "run"}, "grantee_type"),
        ({"grantee_type": "user", "grantee": "outsider-user", "permission": "own"}, "permission"),
        ({"grantee_type": "user", "grantee": "outsider-user", "permission": "delete"}, "permission"),
        ({"grantee_type": "user", "grantee": "admin-user", "permission": "run"}, "grantee"),  # oneself
        ({"grantee_type": "organization", "grantee": "acme", "permission": "run"}, "grantee"),  # its own org
        ({"grantee_type": "user", "permission": "run"}, "grantee"),
    ],
)
def test_bad_input_answers_400_naming_the_field(world, iris, grants_url, admin, body, field):
    response = admin.post(grants_url, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.content
    assert not AuditEvent.objects.filter(action="model.access_granted").exists()


def test_a_team_of_an_organization_the_admin_cannot_see_is_unknown(world, iris, grants_url, admin):
    founder = UserFactory(handle="globex-founder")
    globex = org_services.create_organization(creator=founder, slug="globex", name="Globex")
    org_services.create_team(actor=founder, organization=globex, slug="secret", name="Secret")
    response = admin.post(grants_url, {"grantee_type": "team", "grantee": "globex/secret", "permission": "view"})
    assert response.status_code == 400
    assert "grantee" in response.json()


def test_a_member_who_may_change_the_model_reads_its_grants_but_may_not_grant(world, iris, grants_url):
    member = api_client_for(world.user("member"))
    assert member.get(grants_url).status_code == 200
    refused = member.post(grants_url, {"grantee_type": "user", "grantee": "outsider-user", "permission": "view"})
    assert refused.status_code == 403
    assert "admins and owners" in refused.json()["detail"]


def test_a_change_grant_does_not_pass_on_the_right_to_grant(world, iris, grants_url, admin):
    outsider = world.user("outsider")
    admin.post(grants_url, {"grantee_type": "user", "grantee": outsider.handle, "permission": "change"})
    theirs = api_client_for(outsider)
    assert theirs.get(grants_url).status_code == 200
    refused = theirs.post(grants_url, {"grantee_type": "user", "grantee": "viewer-user", "permission": "change"})
    assert refused.status_code == 403


def test_a_deployment_granted_to_a_team_is_run_by_its_members(world, iris):
    import tests.permissions.matrix as matrix  # first: it loads the apps' matrix entries, matrix_api among them

    scene = matrix.Scene(world)
    from tests.inference.matrix_api import deployment

    made = deployment(scene)
    viewer = world.user("viewer")
    team = org_services.create_team(actor=world.user("owner"), organization=world.org, slug="ops", name="Ops")
    org_services.add_team_member(actor=world.user("owner"), team=team, user=viewer)
    url = reverse("api:deployment-grant-list", kwargs={"org_slug": "acme", "slug": made.slug})
    granted = api_client_for(world.user("owner")).post(
        url, {"grantee_type": "team", "grantee": "ops", "permission": "run"}
    )
    assert granted.status_code == 201, granted.content
    from apps.inference.models import Deployment

    assert Deployment.objects.restrict(viewer, "run").filter(pk=made.pk).exists()


def test_a_registry_offers_view_and_change_but_not_run(world):
    registry = registry_services.create_registry(
        organization=world.org,
        actor=world.user("owner"),
        backend="example-catalog",
        slug="examples",
        name="Examples",
        config={"page_size": 2},
    )
    url = reverse("api:org-registry-grant-list", kwargs={"org_slug": "acme", "registry_slug": "examples"})
    owner = api_client_for(world.user("owner"))
    refused = owner.post(url, {"grantee_type": "user", "grantee": "member-user", "permission": "run"})
    assert refused.status_code == 400 and "permission" in refused.json()
    granted = owner.post(url, {"grantee_type": "user", "grantee": "member-user", "permission": "view"})
    assert granted.status_code == 201
    assert Registry.objects.restrict(world.user("member"), "view").filter(pk=registry.pk).exists()
    assert not Registry.objects.restrict(world.user("member"), "change").filter(pk=registry.pk).exists()


def test_the_routes_are_in_the_openapi_schema(client):
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    paths = schema["paths"]
    assert "post" in paths["/api/v1/models/{owner}/{name}/grants/"]
    assert "delete" in paths["/api/v1/models/{owner}/{name}/grants/{grantee_type}/{grantee}/{permission}/"]
    assert "get" in paths["/api/v1/orgs/{org_slug}/deployments/{slug}/grants/"]
    assert "post" in paths["/api/v1/orgs/{org_slug}/registries/{registry_slug}/grants/"]
