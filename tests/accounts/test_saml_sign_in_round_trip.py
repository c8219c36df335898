"""A full SAML round trip against a real IdP (pysaml2's Server, its own key): AuthnRequest from the portal, a signed
Response to the organization's ACS, just-in-time account and membership, roles and teams from the IdP's groups,
all in the organization's audit chain; group changes at the IdP change them at the next sign-in."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.accounts.models import ExternalIdentity
from apps.accounts.sso import SESSION_KEY
from apps.audit.models import AuditEvent
from apps.core.access import Role
from apps.organizations import services, sso
from apps.organizations.models import Membership
from apps.organizations.provisioning import saml_source
from tests.sso_support import sign_in_through_idp

pytestmark = pytest.mark.django_db


def acme_events(saml, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization=saml.org, action=action).order_by("seq"))


def test_first_sign_in_creates_the_account_and_the_membership_from_the_groups(saml_acme):
    core = services.create_team(actor=saml_acme.owner, organization=saml_acme.org, slug="core")
    sso.set_group_mapping(actor=saml_acme.owner, organization=saml_acme.org, group="eng", role="member", team=core)
    client = Client()

    response = sign_in_through_idp(
        client, saml_acme, email="alice@acme.example", name="Alice Liddell", groups=["eng"], next_url="/orgs/acme/"
    )

    assert response.status_code == 302 and response["Location"] == "/orgs/acme/", response.content[:500]
    alice = get_user_model().objects.get(email="alice@acme.example")
    assert alice.name == "Alice Liddell" and not alice.has_usable_password()
    assert alice.emailaddress_set.get().verified
    assert Membership.objects.get(organization=saml_acme.org, user=alice).role == Role.MEMBER
    assert core.group.user_set.filter(pk=alice.pk).exists()
    identity = ExternalIdentity.objects.get(user=alice)
    assert identity.source == saml_source(saml_acme.org) and identity.subject == "alice@acme.example"
    assert client.session[SESSION_KEY] == [saml_acme.org.pk]
    assert client.get("/orgs/acme/").status_code == 200  # signed in
    added = acme_events(saml_acme, "member.added")[-1]
    assert added.metadata["source"] == saml_source(saml_acme.org) and added.metadata["user"] == alice.handle
    assert added.actor_label == f"identity provider: {saml_source(saml_acme.org)}"
    assert acme_events(saml_acme, "team.member_added")[-1].metadata["user"] == alice.handle
    assert acme_events(saml_acme, "sso.saml_signed_in")[-1].actor == alice


def test_group_changes_at_the_idp_change_role_and_teams_at_the_next_sign_in(saml_acme):
    core = services.create_team(actor=saml_acme.owner, organization=saml_acme.org, slug="core")
    owner = saml_acme.owner
    sso.set_group_mapping(actor=owner, organization=saml_acme.org, group="eng", role="member", team=core)
    sso.set_group_mapping(actor=owner, organization=saml_acme.org, group="portal-admins", role="admin")
    sign_in_through_idp(Client(), saml_acme, email="bob@acme.example", groups=["eng"])
    bob = get_user_model().objects.get(email="bob@acme.example")

    sign_in_through_idp(Client(), saml_acme, email="bob@acme.example", groups=["portal-admins"])

    assert Membership.objects.get(organization=saml_acme.org, user=bob).role == Role.ADMIN
    assert not core.group.user_set.filter(pk=bob.pk).exists()
    changed = acme_events(saml_acme, "member.role_changed")[-1]
    assert changed.diff["role"] == ["member", "admin"] and changed.metadata["source"] == saml_source(saml_acme.org)
    assert acme_events(saml_acme, "team.member_removed")[-1].metadata["user"] == bob.handle
    assert get_user_model().objects.filter(email="bob@acme.example").count() == 1


def test_groups_that_no_longer_give_a_role_end_the_membership_and_refuse_the_sign_in(saml_acme):
    saml_acme.settings(default_role=None)
    sso.set_group_mapping(actor=saml_acme.owner, organization=saml_acme.org, group="eng", role="member")
    sign_in_through_idp(Client(), saml_acme, email="carol@acme.example", groups=["eng"])
    carol = get_user_model().objects.get(email="carol@acme.example")
    client = Client()

    response = sign_in_through_idp(client, saml_acme, email="carol@acme.example", groups=["sales"])

    assert response.status_code == 403
    assert "give you no role" in response.content.decode()
    assert not Membership.objects.filter(organization=saml_acme.org, user=carol).exists()
    removed = acme_events(saml_acme, "member.removed")[-1]
    assert removed.metadata["user"] == carol.handle and removed.diff == {"role": ["member", None]}
    assert "_auth_user_id" not in client.session


def test_an_existing_account_at_a_verified_domain_is_linked_not_duplicated(saml_acme, world):
    member = world.user("member")  # member@acme.example, a member already

    sign_in_through_idp(Client(), saml_acme, email="member@acme.example", groups=[])

    assert get_user_model().objects.filter(email="member@acme.example").count() == 1
    assert ExternalIdentity.objects.get(source=saml_source(saml_acme.org)).user == member
    assert Membership.objects.get(organization=saml_acme.org, user=member).role == Role.MEMBER


def test_the_last_owner_keeps_the_owner_role_whatever_the_groups_say(saml_acme, world):
    sso.set_group_mapping(actor=saml_acme.owner, organization=saml_acme.org, group="eng", role="viewer")

    sign_in_through_idp(Client(), saml_acme, email="owner@acme.example", groups=["eng"])

    assert Membership.objects.get(organization=saml_acme.org, user=world.user("owner")).role == Role.OWNER


def test_an_address_outside_the_verified_domains_is_refused_and_nothing_is_created(saml_acme):
    client = Client()

    response = sign_in_through_idp(client, saml_acme, email="victim@elsewhere.example", groups=[])

    assert response.status_code == 403
    assert "not at a domain" in response.content.decode()
    assert not get_user_model().objects.filter(email="victim@elsewhere.example").exists()
    refused = acme_events(saml_acme, "sso.saml_refused")[-1]
    assert "not at a domain" in refused.metadata["reason"]


def test_the_sp_metadata_names_the_organizations_entity_id_and_acs(saml_acme):
    response = Client().get("/orgs/acme/sso/saml/metadata/")

    body = response.content.decode()
    assert response["Content-Type"].startswith("application/samlmetadata+xml")
    assert 'entityID="http://testserver/orgs/acme/sso/saml/metadata/"' in body
    assert 'Location="http://testserver/orgs/acme/sso/saml/acs/"' in body
    assert 'WantAssertionsSigned="true"' in body


def test_an_organization_without_saml_has_no_saml_routes(world):
    client = Client()
    assert client.get("/orgs/acme/sso/saml/metadata/").status_code == 404
    assert client.get("/orgs/acme/sso/saml/login/").status_code == 404
    assert client.post("/orgs/acme/sso/saml/acs/", {"SAMLResponse": "x"}).status_code == 404


def test_the_idps_cross_site_post_reaches_the_acs_without_a_csrf_token(saml_acme):
    """A browser's POST from the IdP's page carries no CSRF token and a foreign Origin: the ACS takes it."""
    client = Client(enforce_csrf_checks=True)

    response = sign_in_through_idp(client, saml_acme, email="hal@acme.example", next_url="/orgs/acme/")

    assert response.status_code == 302 and response["Location"] == "/orgs/acme/"
