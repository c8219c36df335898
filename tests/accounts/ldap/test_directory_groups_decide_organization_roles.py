"""Directory groups decide roles and teams in the organizations the operator mapped them to, at every sign-in."""

from __future__ import annotations

import ldap
import pytest

from apps.accounts.models import ApiToken, User
from apps.audit.models import AuditEvent
from apps.core.access import Role
from apps.organizations import services as org_services
from apps.organizations.models import GroupMapping, Membership
from tests.accounts.ldap.conftest import sign_in, signed_in_user_id
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_token
from tests.peers.ldap import ALICE, BOB, ERIN, ML_ENGINEERS, ML_LEADS, PLATFORM_ADMINS, PORTAL_STAFF, VIEWERS

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    owner = UserFactory(handle="acme-owner", email="owner@acme.example")
    org = OrganizationFactory(slug="acme")
    MembershipFactory(organization=org, user=owner, role=Role.OWNER)
    return org


def map_group(org, group: str, role: Role, team=None) -> GroupMapping:
    return GroupMapping.objects.create(source="ldap", group=group, organization=org, role=role, team=team)


def role_in(org, email: str) -> Role | None:
    membership = Membership.objects.filter(organization=org, user__email=email).first()
    return Role(membership.role) if membership else None


def events(org, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization=org, action=action).order_by("seq"))


def test_a_mapped_group_makes_the_person_a_member_with_its_role_and_the_org_audits_it(directory, acme):
    map_group(acme, ML_ENGINEERS, Role.MEMBER)
    sign_in(ALICE)

    membership = Membership.objects.get(organization=acme, user__email=ALICE.email)
    assert Role(membership.role) == Role.MEMBER
    assert membership.managed_by == "ldap"
    [added] = events(acme, "member.added")
    assert added.actor_label == "identity provider: ldap"
    assert added.metadata["groups"] == [ML_ENGINEERS.lower()]
    assert added.diff == {"role": [None, "member"]}


def test_group_names_are_compared_without_regard_to_case(directory, acme):
    map_group(acme, ML_ENGINEERS.upper(), Role.VIEWER)
    sign_in(ALICE)
    assert role_in(acme, ALICE.email) == Role.VIEWER


def test_a_nested_group_counts_like_the_groups_it_is_in(directory, acme):
    # Bob is in ml-leads, which is a member of platform-admins.
    map_group(acme, PLATFORM_ADMINS, Role.ADMIN)
    sign_in(BOB)
    assert role_in(acme, BOB.email) == Role.ADMIN


def test_without_nested_groups_only_direct_groups_count(use_directory, slapd, acme):
    use_directory(slapd.environment(LDAP_GROUP_TYPE="group-of-names"))
    map_group(acme, PLATFORM_ADMINS, Role.ADMIN)
    sign_in(BOB)
    assert role_in(acme, BOB.email) is None


def test_the_highest_role_of_several_groups_wins(directory, acme):
    map_group(acme, ML_LEADS, Role.MEMBER)
    map_group(acme, PLATFORM_ADMINS, Role.ADMIN)
    sign_in(BOB)
    assert role_in(acme, BOB.email) == Role.ADMIN


def test_a_group_change_in_the_directory_changes_the_role_at_the_next_sign_in(directory, acme):
    map_group(acme, ML_ENGINEERS, Role.MEMBER)
    map_group(acme, ML_LEADS, Role.ADMIN)
    sign_in(ERIN)
    assert role_in(acme, ERIN.email) == Role.MEMBER

    with directory.modify(ML_LEADS, [(ldap.MOD_ADD, "member", [ERIN.dn.encode()])]):
        sign_in(ERIN)
        assert role_in(acme, ERIN.email) == Role.ADMIN
        [changed] = events(acme, "member.role_changed")
        assert changed.diff == {"role": ["member", "admin"]}
        assert changed.actor_label == "identity provider: ldap"

    sign_in(ERIN)  # out of ml-leads again
    assert role_in(acme, ERIN.email) == Role.MEMBER


def test_leaving_every_mapped_group_removes_the_membership_and_its_bound_tokens_at_the_next_sign_in(directory, acme):
    map_group(acme, ML_ENGINEERS, Role.MEMBER)
    sign_in(ERIN)
    erin = User.objects.get(email=ERIN.email)
    make_token(erin, organization=acme)
    team = org_services.create_team(actor=User.objects.get(handle="acme-owner"), organization=acme, slug="research")
    team.group.user_set.add(erin)

    with directory.modify(ML_ENGINEERS, [(ldap.MOD_DELETE, "member", [ERIN.dn.encode()])]):
        client, _response = sign_in(ERIN)

    assert signed_in_user_id(client) == str(erin.pk)  # they may still sign in; they are just not in acme
    assert role_in(acme, ERIN.email) is None
    assert not team.group.user_set.filter(pk=erin.pk).exists()
    assert ApiToken.objects.filter(user=erin, organization=acme).get().revoked_at is not None
    [removed] = events(acme, "member.removed")
    assert removed.diff == {"role": ["member", None]}
    assert removed.metadata["teams"] == ["research"]


def test_a_membership_people_made_is_not_removed_by_the_directory(directory, acme):
    erin = User.objects.create_user(email=ERIN.email, handle="erin", password=None)
    MembershipFactory(organization=acme, user=erin, role=Role.VIEWER)  # invited by an admin, say
    map_group(acme, ML_LEADS, Role.ADMIN)  # a group Erin is not in

    sign_in(ERIN)
    assert role_in(acme, ERIN.email) == Role.VIEWER
    assert not events(acme, "member.removed")


def test_a_membership_people_made_is_taken_over_when_a_mapped_group_names_the_person(directory, acme):
    alice = User.objects.create_user(email=ALICE.email, handle="alice", password=None)
    MembershipFactory(organization=acme, user=alice, role=Role.VIEWER)
    map_group(acme, ML_ENGINEERS, Role.MEMBER)

    sign_in(ALICE)
    membership = Membership.objects.get(organization=acme, user=alice)
    assert (Role(membership.role), membership.managed_by) == (Role.MEMBER, "ldap")
    [changed] = events(acme, "member.role_changed")
    assert changed.diff == {"managed_by": ["", "ldap"], "role": ["viewer", "member"]}


def test_a_mapped_team_follows_the_group(directory, acme):
    owner = User.objects.get(handle="acme-owner")
    research = org_services.create_team(actor=owner, organization=acme, slug="research")
    map_group(acme, ML_ENGINEERS, Role.MEMBER, team=research)
    sign_in(ERIN)
    erin = User.objects.get(email=ERIN.email)
    assert research.group.user_set.filter(pk=erin.pk).exists()
    assert events(acme, "team.member_added")[0].metadata["source"] == "ldap"

    with directory.modify(ML_ENGINEERS, [(ldap.MOD_DELETE, "member", [ERIN.dn.encode()])]):
        sign_in(ERIN)
    assert not research.group.user_set.filter(pk=erin.pk).exists()


def test_the_last_owner_is_neither_demoted_nor_removed_by_the_directory(directory):
    org = OrganizationFactory(slug="solo")
    map_group(org, ML_ENGINEERS, Role.OWNER)
    sign_in(ERIN)
    assert role_in(org, ERIN.email) == Role.OWNER  # the only owner, through the directory

    with directory.modify(ML_ENGINEERS, [(ldap.MOD_DELETE, "member", [ERIN.dn.encode()])]):
        sign_in(ERIN)
    assert role_in(org, ERIN.email) == Role.OWNER
    [skipped] = events(org, "member.sync_skipped")
    assert skipped.metadata["reason"] == "last_owner"


def test_personal_organizations_cannot_be_mapped(directory):
    from django.core.exceptions import ValidationError

    personal = UserFactory(handle="someone").personal_organization
    with pytest.raises(ValidationError) as raised:
        GroupMapping(source="ldap", group=VIEWERS, organization=personal, role=Role.MEMBER).full_clean()
    assert "organization" in raised.value.message_dict


def test_the_staff_group_makes_operators_and_leaving_it_unmakes_them(use_directory, slapd):
    use_directory(slapd.environment(LDAP_STAFF_GROUP=PORTAL_STAFF))
    sign_in(BOB)
    assert User.objects.get(email=BOB.email).is_staff
    sign_in(ALICE)
    assert not User.objects.get(email=ALICE.email).is_staff
