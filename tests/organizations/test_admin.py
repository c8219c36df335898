"""The operators' admin for organizations, memberships, teams and invitations: pages load with their columns,
filters and search, changes are audited, invitations are revoked rather than deleted."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.access import Role
from apps.organizations import services
from apps.organizations.models import Invitation, Membership, Team
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(db) -> Client:
    operator = UserFactory(handle="operator", email="operator@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    return client


@pytest.mark.parametrize("model", ["organization", "membership", "team", "invitation"])
def test_each_changelist_loads_filters_and_searches(world, team, operator_client, model):
    services.create_invitation(actor=world.user("owner"), organization=world.org, email="new@example.com")
    url = reverse(f"admin:organizations_{model}_changelist")
    assert operator_client.get(url).status_code == 200
    assert operator_client.get(url, {"q": "acme"}).status_code == 200


def test_the_organization_page_shows_members_and_teams(world, team, operator_client):
    answer = operator_client.get(reverse("admin:organizations_organization_change", args=[world.org.pk]))
    assert answer.status_code == 200
    assert b"member-user" in answer.content
    assert b"ml" in answer.content


def test_an_operators_role_change_is_audited(world, operator_client):
    membership = Membership.objects.get(organization=world.org, user=world.user("viewer"))
    url = reverse("admin:organizations_membership_change", args=[membership.pk])
    answer = operator_client.post(
        url,
        {
            "organization": world.org.pk,
            "user": membership.user_id,
            "role": Role.ADMIN,
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
        },
    )
    assert answer.status_code == 302, answer.content[:2000]
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    event = AuditEvent.objects.filter(organization=world.org).order_by("-seq").first()
    assert event.action == "admin.membership.changed"
    assert event.diff == {"role": [Role.VIEWER, Role.ADMIN]}
    assert event.actor.handle == "operator"


def test_an_operator_adds_a_team_which_gets_its_group(world, operator_client):
    answer = operator_client.post(
        reverse("admin:organizations_team_add"),
        {
            "organization": world.org.pk,
            "slug": "ops",
            "name": "Ops",
            "description": "",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
        },
    )
    assert answer.status_code == 302, answer.content[:2000]
    team = Team.objects.get(slug="ops")
    assert team.group.name == f"team:{team.uuid}"


def test_invitations_are_revoked_not_deleted_or_added(world, operator_client):
    invitation = services.create_invitation(actor=world.user("owner"), organization=world.org, email="n@example.com")
    changelist = reverse("admin:organizations_invitation_changelist")
    answer = operator_client.post(changelist, {"action": "revoke", "_selected_action": [invitation.pk]})
    assert answer.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    assert operator_client.get(reverse("admin:organizations_invitation_add")).status_code == 403
    assert Invitation.objects.filter(pk=invitation.pk).exists()
    assert (
        b"key_hash"
        not in operator_client.get(reverse("admin:organizations_invitation_change", args=[invitation.pk])).content
    )
