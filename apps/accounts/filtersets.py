"""Filters for token lists, shared by the API and the pages."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import ApiToken, TokenScope


class ApiTokenFilterSet(django_filters.FilterSet):
    """``?scope=read&status=active&organization=acme&user=alice``."""

    scope = django_filters.ChoiceFilter(
        choices=[(scope.label, scope.label) for scope in TokenScope], method="filter_scope", label="Scope"
    )
    status = django_filters.ChoiceFilter(
        choices=[("active", "active"), ("expired", "expired"), ("revoked", "revoked")],
        method="filter_status",
        label="Status",
    )
    organization = django_filters.CharFilter(field_name="organization__slug", label="Bound organization (slug)")
    user = django_filters.CharFilter(field_name="user__handle", label="Owner (handle)")

    class Meta:
        model = ApiToken
        fields = ["scope", "status", "organization", "user"]

    def filter_scope(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(scope=TokenScope.from_name(value))

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        now = timezone.now()
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if value == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)
