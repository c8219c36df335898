"""SCIM Users as an IdP's provisioning client sends them (Okta's and Entra ID's shapes): create, read, filter,
replace (PUT), PATCH, deactivate and delete, each checked against memberships, accounts, tokens and the audit
trail."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.audit.models import AuditEvent
from apps.core.access import Role
from apps.organizations.models import Membership
from tests.conftest import api_client_for
from tests.sso_support import SCIM_ERROR, SCIM_USER, scim_user

pytestmark = pytest.mark.django_db


def actions(org) -> list[str]:
    return list(AuditEvent.objects.filter(organization=org).order_by("seq").values_list("action", flat=True))


def created(scim_acme, user_name: str = "fran@acme.example", **extra) -> dict:
    response = scim_acme.post("/Users", scim_user(user_name, **extra))
    assert response.status_code == 201, response.content
    return response.json()


def test_creating_a_user_makes_the_account_and_the_membership(scim_acme, world):
    response = scim_acme.post("/Users", scim_user("fran@acme.example", externalId="00u1", full_name="Fran Kafka"))

    assert response.status_code == 201 and response["Content-Type"] == "application/scim+json"
    body = response.json()
    assert body["schemas"] == [SCIM_USER] and body["userName"] == "fran@acme.example" and body["active"] is True
    assert body["externalId"] == "00u1" and body["name"]["givenName"] == "Fran"
    assert response["Location"].endswith(f"/orgs/acme/scim/v2/Users/{body['id']}")
    fran = get_user_model().objects.get(email="fran@acme.example")
    assert fran.name == "Fran Kafka" and not fran.has_usable_password()
    assert Membership.objects.get(organization=world.org, user=fran).role == Role.MEMBER
    assert {"scim.user_created", "member.added"} <= set(actions(world.org))
    event = AuditEvent.objects.filter(organization=world.org, action="scim.user_created").get()
    assert event.actor_label.startswith("SCIM token ")


def test_reading_and_filtering_users(scim_acme):
    fran = created(scim_acme, "fran@acme.example", externalId="00u1", displayName="Fran K")
    created(scim_acme, "gus@acme.example", externalId="00u2")

    assert scim_acme.get(f"/Users/{fran['id']}").json()["userName"] == "fran@acme.example"
    by_name = scim_acme.get("/Users", filter='userName eq "FRAN@acme.example"').json()
    assert by_name["totalResults"] == 1 and by_name["Resources"][0]["id"] == fran["id"]
    by_external = scim_acme.get("/Users", filter='externalId eq "00u2"').json()
    assert [r["userName"] for r in by_external["Resources"]] == ["gus@acme.example"]
    by_display = scim_acme.get("/Users", filter='displayName eq "Fran K"').json()
    assert [r["id"] for r in by_display["Resources"]] == [fran["id"]]
    both = scim_acme.get("/Users", filter='userName sw "fran" or externalId eq "00u2"').json()
    assert both["totalResults"] == 2
    none = scim_acme.get("/Users", filter='userName eq "nobody@acme.example"').json()
    assert none["totalResults"] == 0 and none["Resources"] == []
    paged = scim_acme.get("/Users", startIndex=2, count=1).json()
    assert paged["startIndex"] == 2 and paged["itemsPerPage"] == 1 and paged["totalResults"] == 2


def test_put_replaces_the_attributes(scim_acme):
    fran = created(scim_acme, externalId="00u1")

    response = scim_acme.put(
        f"/Users/{fran['id']}", scim_user("fran@acme.example", externalId="00u9", full_name="Fran Q")
    )

    assert response.status_code == 200
    assert response.json()["externalId"] == "00u9" and response.json()["name"]["familyName"] == "Q"


def test_patch_replaces_attributes_with_and_without_a_path(scim_acme):
    fran = created(scim_acme)

    scim_acme.patch(f"/Users/{fran['id']}", [{"op": "replace", "path": "displayName", "value": "Frannie"}])
    response = scim_acme.patch(f"/Users/{fran['id']}", [{"op": "replace", "value": {"externalId": "x-1"}}])

    assert response.status_code == 200
    assert response.json()["displayName"] == "Frannie" and response.json()["externalId"] == "x-1"


def test_deactivating_removes_access_at_once_and_keeps_the_audit_trail(scim_acme, world):
    fran_resource = created(scim_acme)
    fran = get_user_model().objects.get(email="fran@acme.example")
    bound = api_client_for(fran, organization=world.org)
    assert bound.get("/api/v1/orgs/acme/members/").status_code == 200

    # Entra ID sends the boolean as a string.
    response = scim_acme.patch(f"/Users/{fran_resource['id']}", [{"op": "replace", "path": "active", "value": "False"}])

    assert response.status_code == 200 and response.json()["active"] is False
    assert not Membership.objects.filter(organization=world.org, user=fran).exists()
    fran.refresh_from_db()
    assert not fran.is_active  # an account only this organization made: disabled, sessions and tokens end
    assert bound.get("/api/v1/orgs/acme/members/").status_code == 401
    assert {"member.removed", "scim.user_updated"} <= set(actions(world.org))
    assert AuditEvent.objects.filter(organization=world.org, action="scim.user_created").exists()

    again = scim_acme.patch(f"/Users/{fran_resource['id']}", [{"op": "replace", "value": {"active": True}}])
    assert again.json()["active"] is True
    fran.refresh_from_db()
    assert fran.is_active and Membership.objects.filter(organization=world.org, user=fran).exists()


def test_deprovisioning_a_member_with_other_organizations_ends_only_this_membership(scim_acme, world):
    member = world.user("member")  # member@acme.example: a password, a personal organization
    resource = created(scim_acme, "member@acme.example")
    unbound = api_client_for(member)
    assert unbound.get("/api/v1/orgs/acme/members/").status_code == 200

    assert scim_acme.delete(f"/Users/{resource['id']}").status_code == 204

    member.refresh_from_db()
    assert member.is_active
    assert not Membership.objects.filter(organization=world.org, user=member).exists()
    assert unbound.get("/api/v1/orgs/acme/members/").status_code == 404  # the token lost acme at once
    assert scim_acme.get(f"/Users/{resource['id']}").status_code == 404
    assert "scim.user_deleted" in actions(world.org)


def test_an_address_outside_the_verified_domains_is_refused(scim_acme):
    response = scim_acme.post("/Users", scim_user("someone@elsewhere.example"))

    assert response.status_code == 400
    body = response.json()
    assert body["schemas"] == [SCIM_ERROR] and body["status"] == "400" and body["scimType"] == "invalidValue"
    assert "verified" in body["detail"]
    assert not get_user_model().objects.filter(email="someone@elsewhere.example").exists()


def test_a_second_user_with_the_same_username_is_a_conflict(scim_acme):
    created(scim_acme)
    response = scim_acme.post("/Users", scim_user("FRAN@acme.example"))
    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"


def test_the_last_owner_is_not_deprovisioned(scim_acme, world):
    resource = created(scim_acme, "owner@acme.example")
    response = scim_acme.patch(f"/Users/{resource['id']}", [{"op": "replace", "path": "active", "value": False}])
    assert response.status_code == 400 and response.json()["scimType"] == "mutability"
    assert Membership.objects.filter(organization=world.org, user=world.user("owner"), role=Role.OWNER).exists()
