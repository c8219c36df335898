"""Every change the organization services make writes one audit event in the organization's chain, in the same
transaction, with the actor, the target and a diff; the chain still verifies afterwards."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditChain, AuditEvent
from apps.audit.verification import verify_chain
from apps.core.access import Role
from apps.organizations import services
from apps.organizations.models import Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def last_event(organization) -> AuditEvent:
    return AuditEvent.objects.filter(organization=organization).order_by("-seq").first()


def membership(world, persona):
    return Membership.objects.get(organization=world.org, user=world.user(persona))


def test_each_change_writes_one_event_with_actor_target_and_diff(world):
    owner, admin = world.user("owner"), world.user("admin")
    org = world.org
    steps = [
        (
            lambda: services.update_organization(actor=owner, organization=org, name="Acme Inc", visibility="internal"),
            "organization.updated",
            owner,
            {"name": ["Acme", "Acme Inc"], "visibility": ["private", "internal"]},
        ),
        (
            lambda: services.change_member_role(actor=admin, membership=membership(world, "viewer"), role="member"),
            "member.role_changed",
            admin,
            {"role": ["viewer", "member"]},
        ),
        (
            lambda: services.create_team(actor=admin, organization=org, slug="ml", name="ML"),
            "team.created",
            admin,
            {"slug": [None, "ml"], "name": [None, "ML"], "description": [None, ""]},
        ),
    ]
    for run, action, actor, diff in steps:
        count = AuditEvent.objects.count()
        run()
        assert AuditEvent.objects.count() == count + 1
        event = last_event(org)
        assert (event.action, event.actor_id, event.diff) == (action, actor.pk, diff)

    team = services.update_team(actor=admin, team=org.teams.get(slug="ml"), description="Models")
    assert (last_event(org).action, last_event(org).diff) == ("team.updated", {"description": ["", "Models"]})
    assert last_event(org).target_id == str(team.uuid)

    services.add_team_member(actor=admin, team=team, user=world.user("member"))
    assert (last_event(org).action, last_event(org).diff) == ("team.member_added", {"members": [None, "member-user"]})
    services.remove_team_member(actor=admin, team=team, user=world.user("member"))
    assert (last_event(org).action, last_event(org).diff) == ("team.member_removed", {"members": ["member-user", None]})

    invitation = services.create_invitation(actor=admin, organization=org, email="new@example.com", role="viewer")
    event = last_event(org)
    assert (event.action, event.diff) == (
        "invitation.created",
        {"email": [None, "new@example.com"], "role": [None, "viewer"]},
    )
    assert event.target_id == str(invitation.uuid)
    assert invitation.key not in str(event.diff) + str(event.metadata)

    services.revoke_invitation(actor=admin, invitation=invitation)
    assert (last_event(org).action, last_event(org).diff) == ("invitation.revoked", {"status": ["pending", "revoked"]})

    services.remove_member(actor=admin, membership=membership(world, "viewer"))
    assert (last_event(org).action, last_event(org).diff) == ("member.removed", {"role": ["member", None]})

    services.leave_organization(user=world.user("member"), organization=org)
    event = last_event(org)
    assert (event.action, event.actor_id, event.diff) == (
        "member.left",
        world.user("member").pk,
        {"role": ["member", None]},
    )

    services.delete_team(actor=admin, team=team)
    assert (last_event(org).action, last_event(org).diff) == ("team.deleted", {"slug": ["ml", None]})

    result = verify_chain(AuditChain.key_for(org.pk))
    assert result.ok, str(result)


def test_accepting_records_the_acceptance_and_the_new_member(world):
    invitation = services.create_invitation(actor=world.user("owner"), organization=world.org, email="n@example.com")
    newcomer = UserFactory(email="n@example.com")
    services.accept_invitation(user=newcomer, key=invitation.key)
    accepted, added = AuditEvent.objects.filter(organization=world.org).order_by("-seq")[:2][::-1]
    assert (accepted.action, accepted.actor_id) == ("invitation.accepted", newcomer.pk)
    assert (added.action, added.diff) == ("member.added", {"role": [None, "member"]})


def test_deleting_an_organization_is_kept_in_the_platform_chain(world):
    services.delete_organization(actor=world.user("owner"), organization=world.org)
    event = AuditEvent.objects.filter(organization__isnull=True, action="organization.deleted").get()
    assert event.metadata["slug"] == "acme"
    assert event.metadata["members"] == 4
    assert verify_chain(AuditChain.PLATFORM_KEY).ok


def test_an_unchanged_setting_or_role_writes_no_event(world):
    count = AuditEvent.objects.count()
    services.update_organization(actor=world.user("owner"), organization=world.org, name="Acme")
    services.change_member_role(actor=world.user("owner"), membership=membership(world, "admin"), role=Role.ADMIN)
    assert AuditEvent.objects.count() == count


def test_a_refused_change_writes_no_event(world):
    count = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        services.change_member_role(actor=world.user("owner"), membership=membership(world, "owner"), role="admin")
    with pytest.raises(ValidationError):
        services.create_team(actor=world.user("owner"), organization=world.org, slug="-bad-")
    assert AuditEvent.objects.count() == count
