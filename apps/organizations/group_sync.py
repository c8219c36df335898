"""Memberships and team places that an identity provider's groups decide.

Every sign-in through a provider that names groups (the operator's LDAP directory; OpenID Connect providers with
a groups claim; SAML and SCIM per organization later) calls :func:`apply_group_mappings` with the user's groups
at that moment. In each organization the provider maps (a :class:`~apps.organizations.models.GroupMapping` of the
same ``source``):

* the user's role becomes the highest role among the mappings of their groups: a membership is created, or its
  role changed, and from then on it is *managed by* the source (``Membership.managed_by``), also when people made it
  (an invitation) before;
* no mapped group any more: a membership the source manages is removed (the user leaves the organization's teams
  and their tokens bound to it are revoked, as when an admin removes someone); a membership people manage
  is left alone;
* in every team the source maps, the user is in the team exactly when one of their groups maps to it.

The last owner of an organization is never demoted or removed this way (the change is skipped and recorded).
Personal organizations are never touched. Each change is one audit event in the organization's chain, by
``source`` (the actor label ``identity provider: <source>``), with the groups that decided it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from apps.audit.services import record_event
from apps.core.access import Role
from apps.organizations.models import GroupMapping, Membership, Organization, Team
from apps.organizations.services import _lock_organization, _owner_count, _remove_from_teams, _revoke_bound_tokens


@dataclass
class Placement:
    """What a user's groups give in one organization: a role (None: no membership) and teams."""

    organization: Organization
    role: Role | None = None
    teams: set[Team] = field(default_factory=set)
    managed_teams: set[Team] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Change:
    """One change :func:`apply_group_mappings` made (or skipped), for logs, checks and the test sign-in page."""

    organization: str
    what: str

    def __str__(self) -> str:
        return f"{self.organization}: {self.what}"


def actor_label(source: str) -> str:
    return f"identity provider: {source}"


def resolve_group_mappings(*, source: str, groups: Iterable[str]) -> dict[int, Placement]:
    """What ``groups`` give in each organization ``source`` maps (organization pk → placement); writes nothing."""
    wanted = {group.casefold(): group for group in groups}
    placements: dict[int, Placement] = {}
    mappings = GroupMapping.objects.filter(source=source, organization__is_personal=False)
    for mapping in mappings.select_related("organization", "team__group"):
        placement = placements.setdefault(mapping.organization_id, Placement(organization=mapping.organization))
        if mapping.team_id:
            placement.managed_teams.add(mapping.team)
        if mapping.group.casefold() not in wanted:
            continue
        placement.groups.add(wanted[mapping.group.casefold()])
        role = Role(mapping.role)
        placement.role = role if placement.role is None else max(placement.role, role)
        if mapping.team_id:
            placement.teams.add(mapping.team)
    return placements


def apply_group_mappings(*, user: Any, source: str, groups: Iterable[str]) -> list[Change]:
    """Bring ``user``'s memberships and teams in line with ``groups`` (see the module docstring); the changes."""
    groups = sorted(set(groups))
    placements = resolve_group_mappings(source=source, groups=groups)
    managed = Membership.objects.filter(user=user, managed_by=source, organization__is_personal=False)
    for membership in managed.select_related("organization"):
        placements.setdefault(membership.organization_id, Placement(organization=membership.organization))
    changes: list[Change] = []
    # One transaction per organization, in a fixed order: two sign-ins never wait on each other's locks crosswise.
    for organization_id in sorted(placements):
        changes += _apply_placement(user=user, source=source, placement=placements[organization_id])
    return changes


@transaction.atomic
def _apply_placement(*, user: Any, source: str, placement: Placement) -> list[Change]:
    organization = _lock_organization(placement.organization)
    membership = Membership.objects.select_for_update().filter(organization=organization, user=user).first()
    label = actor_label(source)
    context = {"user": user.handle, "source": source, "groups": sorted(placement.groups)}
    changes: list[Change] = []

    def record(action: str, target: Any, diff: dict, what: str, **metadata: Any) -> None:
        record_event(
            action=action,
            organization=organization,
            actor_label=label,
            target=target,
            diff=diff,
            metadata={**context, **metadata},
        )
        changes.append(Change(organization.slug, what))

    last_owner = membership is not None and membership.role == Role.OWNER and _owner_count(organization) <= 1
    if placement.role is None:
        if membership is not None and membership.managed_by == source:
            if last_owner:
                record(
                    "member.sync_skipped",
                    membership,
                    {},
                    "kept: the last owner is not removed by an identity provider",
                    reason="last_owner",
                )
            else:
                old = Role(membership.role)
                teams = _remove_from_teams(organization, user)
                record("member.removed", membership, {"role": [old.label, None]}, f"removed ({old.label})", teams=teams)
                membership.delete()
                _revoke_bound_tokens(organization=organization, user=user, by=None)
                membership = None
    elif membership is None:
        membership = Membership.objects.create(
            organization=organization, user=user, role=placement.role, managed_by=source
        )
        record("member.added", membership, {"role": [None, placement.role.label]}, f"added as {placement.role.label}")
    elif membership.role != placement.role or membership.managed_by != source:
        old = Role(membership.role)
        diff: dict[str, list] = {}
        if membership.managed_by != source:
            diff["managed_by"] = [membership.managed_by, source]
            membership.managed_by = source
        if old != placement.role:
            if last_owner:
                record(
                    "member.sync_skipped",
                    membership,
                    {},
                    "kept owner: the last owner is not demoted by an identity provider",
                    reason="last_owner",
                    wanted=placement.role.label,
                )
            else:
                diff["role"] = [old.label, placement.role.label]
                membership.role = placement.role
        if diff:
            membership.save(update_fields=["role", "managed_by"])
            what = f"{old.label} → {placement.role.label}" if "role" in diff else f"now managed by {source}"
            record("member.role_changed" if "role" in diff else "member.updated", membership, diff, what)

    for team in sorted(placement.managed_teams, key=lambda t: t.slug):
        inside = team.group.user_set.filter(pk=user.pk).exists()
        wanted = membership is not None and team in placement.teams
        if wanted and not inside:
            team.group.user_set.add(user)
            record("team.member_added", team, {"members": [None, user.handle]}, f"joined team {team.slug}")
        elif inside and not wanted:
            team.group.user_set.remove(user)
            record("team.member_removed", team, {"members": [user.handle, None]}, f"left team {team.slug}")
    return changes
