"""SCIM Groups are teams: create with members, filter, PATCH members (add, remove by filter path, replace),
rename, PUT, delete; and what an IdP gets wrong answers RFC 7644 errors. Tokens: per organization, shown once,
rotated and revoked (audited); another organization's token finds nothing here (404)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.audit.models import AuditEvent
from apps.organizations import scim
from apps.organizations.models import ScimToken, Team
from tests.factories import OrganizationFactory
from tests.sso_support import SCIM_ERROR, SCIM_GROUP, ScimClient, scim_user, verify_domain

pytestmark = pytest.mark.django_db


def user_id(scim_acme, email: str) -> str:
    response = scim_acme.post("/Users", scim_user(email))
    assert response.status_code == 201, response.content
    return response.json()["id"]


def team_handles(team: Team) -> set[str]:
    return set(get_user_model().objects.filter(groups=team.group_id).values_list("handle", flat=True))


def test_a_group_is_a_team_with_its_members(scim_acme, world):
    fran = user_id(scim_acme, "fran@acme.example")

    response = scim_acme.post(
        "/Groups",
        {"schemas": [SCIM_GROUP], "displayName": "ML Platform", "externalId": "g1", "members": [{"value": fran}]},
    )

    assert response.status_code == 201
    body = response.json()
    team = Team.objects.get(uuid=body["id"])
    assert team.organization == world.org and team.name == "ML Platform" and team.slug == "ml-platform"
    assert team_handles(team) == {"fran"}
    assert body["members"][0]["value"] == fran
    assert AuditEvent.objects.filter(organization=world.org, action="team.created").exists()
    filtered = scim_acme.get("/Groups", filter='displayName eq "ml platform"', excludedAttributes="members").json()
    assert filtered["totalResults"] == 1 and "members" not in filtered["Resources"][0]
    assert scim_acme.get("/Groups", filter='externalId eq "g1"').json()["totalResults"] == 1


def test_patching_members_adds_and_removes_them(scim_acme, world):
    fran, gus = user_id(scim_acme, "fran@acme.example"), user_id(scim_acme, "gus@acme.example")
    group = scim_acme.post("/Groups", {"schemas": [SCIM_GROUP], "displayName": "Ops"}).json()
    team = Team.objects.get(uuid=group["id"])

    scim_acme.patch(
        f"/Groups/{group['id']}", [{"op": "add", "path": "members", "value": [{"value": fran}, {"value": gus}]}]
    )
    assert team_handles(team) == {"fran", "gus"}

    scim_acme.patch(f"/Groups/{group['id']}", [{"op": "remove", "path": f'members[value eq "{fran}"]'}])
    assert team_handles(team) == {"gus"}

    scim_acme.patch(f"/Groups/{group['id']}", [{"op": "replace", "path": "displayName", "value": "Operations"}])
    team.refresh_from_db()
    assert team.name == "Operations"
    removed = AuditEvent.objects.filter(organization=world.org, action="team.member_removed").get()
    assert removed.metadata["user"] == "fran"


def test_put_replaces_the_members_and_delete_removes_the_team(scim_acme):
    fran, gus = user_id(scim_acme, "fran@acme.example"), user_id(scim_acme, "gus@acme.example")
    group = scim_acme.post(
        "/Groups", {"schemas": [SCIM_GROUP], "displayName": "Ops", "members": [{"value": fran}]}
    ).json()
    team = Team.objects.get(uuid=group["id"])

    scim_acme.put(
        f"/Groups/{group['id']}", {"schemas": [SCIM_GROUP], "displayName": "Ops", "members": [{"value": gus}]}
    )
    assert team_handles(team) == {"gus"}

    assert scim_acme.delete(f"/Groups/{group['id']}").status_code == 204
    assert not Team.objects.filter(pk=team.pk).exists()
    assert scim_acme.get(f"/Groups/{group['id']}").status_code == 404


def test_a_deprovisioned_user_leaves_the_groups_teams(scim_acme):
    fran = user_id(scim_acme, "fran@acme.example")
    group = scim_acme.post(
        "/Groups", {"schemas": [SCIM_GROUP], "displayName": "Ops", "members": [{"value": fran}]}
    ).json()

    scim_acme.patch(f"/Users/{fran}", [{"op": "replace", "path": "active", "value": False}])

    assert team_handles(Team.objects.get(uuid=group["id"])) == set()


def test_the_discovery_endpoints_describe_the_service(scim_acme):
    config = scim_acme.get("/ServiceProviderConfig").json()
    assert config["patch"]["supported"] is True and config["filter"]["supported"] is True
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = scim_acme.get("/ResourceTypes").json()
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}
    schemas = scim_acme.get("/Schemas").json()
    assert {s["name"] for s in schemas["Resources"]} == {"User", "Group"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "scim_type"),
    [
        ("POST", "/Users", "{not json", 400, "invalidSyntax"),
        ("POST", "/Users", ["a list"], 400, "invalidSyntax"),
        ("POST", "/Users", {"schemas": [], "emails": "x"}, 400, "invalidValue"),
        ("POST", "/Users", {"schemas": [], "userName": 42}, 400, "invalidValue"),
        ("POST", "/Users", {"schemas": [], "userName": "a@acme.example", "active": "maybe"}, 400, "invalidValue"),
        ("POST", "/Groups", {"schemas": []}, 400, "invalidValue"),
        ("POST", "/Groups", {"schemas": [], "displayName": "X", "members": [{"value": "nobody"}]}, 400, "invalidValue"),
        ("GET", "/Users/not-a-user", None, 404, None),
        ("GET", "/Groups/not-a-group", None, 404, None),
    ],
)
def test_malformed_requests_answer_scim_errors(scim_acme, method, path, body, status, scim_type):
    response = scim_acme.call(method, path, body)

    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/scim+json"
    error = response.json()
    assert error["schemas"] == [SCIM_ERROR] and error["status"] == str(status) and error["detail"]
    assert error.get("scimType") == scim_type


@pytest.mark.parametrize(
    "filter_text",
    ['userName gt "a"', 'password eq "x"', 'userName eq "unterminated', "userName eq", '(userName eq "a"', "and"],
)
def test_a_bad_filter_answers_invalid_filter(scim_acme, filter_text):
    response = scim_acme.get("/Users", filter=filter_text)
    assert response.status_code == 400 and response.json()["scimType"] == "invalidFilter"


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "move", "path": "active", "value": False}],
        [{"op": "replace", "path": "password", "value": "x"}],
        [{"op": "remove", "path": "userName"}],
        [],
    ],
)
def test_a_bad_patch_answers_a_scim_error_and_changes_nothing(scim_acme, operations):
    fran = user_id(scim_acme, "fran@acme.example")
    before = AuditEvent.objects.count()

    response = scim_acme.patch(f"/Users/{fran}", operations)

    assert response.status_code == 400 and response.json()["scimType"] in {"invalidSyntax", "invalidPath", "mutability"}
    assert AuditEvent.objects.count() == before


def test_requests_without_a_valid_token_answer_401(scim_acme):
    for token in ("", "gpuxscim_nope_nope", "gpux_something_else"):
        response = ScimClient(token).get("/Users")
        assert response.status_code == 401 and response.json()["schemas"] == [SCIM_ERROR]
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_of_another_organization_finds_nothing_here(scim_acme, world):
    globex = OrganizationFactory(slug="globex")
    from apps.core.access import Role
    from tests.factories import MembershipFactory

    MembershipFactory(organization=globex, user=world.user("outsider"), role=Role.OWNER)
    verify_domain(globex, "globex.example")
    _token, raw = scim.create_scim_token(actor=world.user("outsider"), organization=globex)
    fran = user_id(scim_acme, "fran@acme.example")

    theirs = ScimClient(raw)
    assert theirs.get("/Users").status_code == 404
    assert theirs.get(f"/Users/{fran}").status_code == 404
    assert theirs.delete(f"/Users/{fran}").status_code == 404
    assert ScimClient(raw, base="/orgs/globex/scim/v2").get(f"/Users/{fran}").status_code == 404
    assert ScimClient(raw, base="/orgs/globex/scim/v2").get("/Users").json()["totalResults"] == 0


def test_rotating_replaces_the_token_and_revoking_ends_it_both_audited(scim_acme, world):
    owner = world.user("owner")
    new, raw = scim.create_scim_token(actor=owner, organization=world.org)

    assert scim_acme.get("/Users").status_code == 401  # the old token was revoked by the rotation
    assert ScimClient(raw).get("/Users").status_code == 200
    assert ScimToken.objects.filter(organization=world.org, revoked_at__isnull=True).get() == new
    assert raw not in str(list(ScimToken.objects.values()))  # only its HMAC is kept

    scim.revoke_scim_token(actor=owner, token=new)

    assert ScimClient(raw).get("/Users").status_code == 401
    assert list(
        AuditEvent.objects.filter(organization=world.org, action__startswith="scim.token").values_list(
            "action", flat=True
        )
    ) == ["scim.token_created", "scim.token_revoked", "scim.token_created", "scim.token_revoked"]


@pytest.mark.parametrize("persona", ["member", "viewer", "outsider"])
def test_only_admins_and_owners_manage_the_scim_token(world, persona):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        scim.create_scim_token(actor=world.user(persona), organization=world.org)
    assert not ScimToken.objects.exists()


@pytest.mark.parametrize("persona", ["owner", "admin", "member", "viewer", "outsider"])
@pytest.mark.parametrize(
    "path", ["/Users", "/Groups", "/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/Users/x", "/Groups/x"]
)
def test_a_personas_session_or_api_token_never_reaches_scim(scim_acme, world, persona, path):
    from django.test import Client

    from tests.conftest import api_client_for

    session = Client()
    session.force_login(world.user(persona))
    assert session.get(f"/orgs/acme/scim/v2{path}").status_code == 401
    assert api_client_for(world.user(persona)).get(f"/orgs/acme/scim/v2{path}").status_code == 401
    assert session.post("/orgs/acme/scim/v2/Users", {}, content_type="application/scim+json").status_code == 401
