"""Operators map identity-provider groups onto organization roles and teams in the Django admin; audited, checked."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.access import Role
from apps.organizations.models import GroupMapping
from apps.organizations.services import create_team
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

GROUP = "cn=ml-engineers,ou=groups,dc=corp,dc=example"


@pytest.fixture
def operator_client(db) -> Client:
    operator = UserFactory(handle="operator", email="operator@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    return client


def add(client: Client, **fields) -> object:
    return client.post(reverse("admin:organizations_groupmapping_add"), fields)


def test_an_operator_maps_a_group_onto_a_role_and_a_team_and_it_is_audited(world, team, operator_client):
    answer = add(operator_client, source="ldap", group=GROUP, organization=world.org.pk, role=Role.ADMIN, team=team.pk)
    assert answer.status_code == 302, answer.content[:2000]
    mapping = GroupMapping.objects.get()
    assert (mapping.organization, mapping.role, mapping.team) == (world.org, Role.ADMIN, team)
    event = AuditEvent.objects.get(organization=world.org, action="admin.groupmapping.created")
    assert event.diff["group"] == [None, GROUP]
    listing = operator_client.get(reverse("admin:organizations_groupmapping_changelist"), {"q": "ml-engineers"})
    assert GROUP.encode() in listing.content


def test_a_team_of_another_organization_is_refused(world, operator_client):
    other = OrganizationFactory(slug="other")
    owner = UserFactory(handle="other-owner")
    MembershipFactory(organization=other, user=owner, role=Role.OWNER)
    foreign = create_team(actor=owner, organization=other, slug="ops")
    answer = add(
        operator_client, source="ldap", group=GROUP, organization=world.org.pk, role=Role.MEMBER, team=foreign.pk
    )
    assert answer.status_code == 200
    assert b"is not a team of" in answer.content
    assert not GroupMapping.objects.exists()


def test_a_personal_organization_is_refused(operator_client):
    personal = UserFactory(handle="someone").personal_organization
    answer = add(operator_client, source="ldap", group=GROUP, organization=personal.pk, role=Role.MEMBER)
    assert answer.status_code == 200
    assert b"personal organization" in answer.content
    assert not GroupMapping.objects.exists()
