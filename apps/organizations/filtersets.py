"""Filters for lists of organizations, members, teams, team members and invitations (API and pages)."""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import F, Q
from django.utils import timezone

from apps.core.access import Role, Visibility
from apps.organizations.models import Invitation, Membership, Organization, Team

ROLE_CHOICES = [(role.label, role.label) for role in Role]


def _role_number(name: str) -> int:
    return int(Role.from_name(name))


class OrganizationFilterSet(django_filters.FilterSet):
    """``visibility``, ``is_personal``, ``member`` (only those you belong to) and ``role`` (your role there).

    ``member`` and ``role`` read the ``caller_role`` annotation the API's queryset adds.
    """

    visibility = django_filters.ChoiceFilter(choices=Visibility.choices)
    is_personal = django_filters.BooleanFilter()
    member = django_filters.BooleanFilter(method="filter_member", label="Only organizations you are a member of")
    role = django_filters.ChoiceFilter(choices=ROLE_CHOICES, method="filter_role", label="Your role")

    class Meta:
        model = Organization
        fields = ["visibility", "is_personal", "member", "role"]

    def filter_member(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(caller_role__isnull=not value)

    def filter_role(self, queryset, name, value):
        return queryset.filter(caller_role=_role_number(value)) if value else queryset


class MembershipFilterSet(django_filters.FilterSet):
    """``role`` (exact), ``min_role`` (that role or above), ``handle`` and ``team`` (members of a team, by slug)."""

    role = django_filters.ChoiceFilter(choices=ROLE_CHOICES, method="filter_role")
    min_role = django_filters.ChoiceFilter(choices=ROLE_CHOICES, method="filter_min_role", label="At least this role")
    handle = django_filters.CharFilter(field_name="user__handle", lookup_expr="iexact")
    team = django_filters.CharFilter(method="filter_team", label="Members of the team with this slug")

    class Meta:
        model = Membership
        fields = ["role", "min_role", "handle", "team"]

    def filter_role(self, queryset, name, value):
        return queryset.filter(role=_role_number(value)) if value else queryset

    def filter_min_role(self, queryset, name, value):
        return queryset.filter(role__gte=_role_number(value)) if value else queryset

    def filter_team(self, queryset, name, value):
        if not value:
            return queryset
        # One filter() call, so both conditions hold for the same team: one of this membership's organization.
        return queryset.filter(
            user__groups__team__slug__iexact=value, user__groups__team__organization=F("organization")
        ).distinct()


class TeamFilterSet(django_filters.FilterSet):
    """``slug``, ``name`` (contains) and ``member`` (teams a user, by handle, is in)."""

    slug = django_filters.CharFilter(lookup_expr="iexact")
    name = django_filters.CharFilter(lookup_expr="icontains")
    member = django_filters.CharFilter(field_name="group__user__handle", lookup_expr="iexact", distinct=True)

    class Meta:
        model = Team
        fields = ["slug", "name", "member"]


class TeamMemberFilterSet(django_filters.FilterSet):
    """``handle`` (exact, case-insensitive)."""

    handle = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = get_user_model()
        fields = ["handle"]


class InvitationFilterSet(django_filters.FilterSet):
    """``status`` (pending, accepted, revoked, expired), ``role`` and ``email``."""

    status = django_filters.ChoiceFilter(choices=Invitation.Status.choices, method="filter_status")
    role = django_filters.ChoiceFilter(choices=ROLE_CHOICES, method="filter_role")
    email = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Invitation
        fields = ["status", "role", "email"]

    def filter_role(self, queryset, name, value):
        return queryset.filter(role=_role_number(value)) if value else queryset

    def filter_status(self, queryset, name, value):
        now = timezone.now()
        open_ = Q(accepted_at__isnull=True, revoked_at__isnull=True)
        conditions = {
            Invitation.Status.ACCEPTED: Q(accepted_at__isnull=False),
            Invitation.Status.REVOKED: Q(accepted_at__isnull=True, revoked_at__isnull=False),
            Invitation.Status.EXPIRED: open_ & Q(expires_at__lte=now),
            Invitation.Status.PENDING: open_ & Q(expires_at__gt=now),
        }
        return queryset.filter(conditions[value]) if value in conditions else queryset
