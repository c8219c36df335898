"""Filters for the audit trail, shared by the API (list and export), the export job and the audit page."""

from __future__ import annotations

from datetime import datetime, timedelta

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from apps.audit.models import AuditEvent


class AuditEventFilterForm(forms.Form):
    """Cross-field checks: a period whose end comes before its start is refused, naming ``until``."""

    def clean(self) -> dict:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", "“until” must not be earlier than “since”.")
        return cleaned


class AuditEventFilterSet(django_filters.FilterSet):
    """``?action=member.added&actor=alice&target_type=organizations.team&since=2026-01-01&search=gpu``.

    ``action`` matches exactly, or by prefix when it ends with ``*`` (``member.*``). ``actor`` is a handle or
    an e-mail address (the current handle, or the e-mail recorded with the event). ``since`` is inclusive,
    ``until`` inclusive (a plain date covers that whole day); both take ISO 8601 dates or date-times (UTC unless
    an offset is given).
    """

    action = django_filters.CharFilter(method="filter_action", label="Action (exact, or a prefix ending in *)")
    actor = django_filters.CharFilter(method="filter_actor", label="Actor (handle or e-mail)")
    target_type = django_filters.CharFilter(field_name="target_type", label="Target type (app.model)")
    target_id = django_filters.CharFilter(field_name="target_id", label="Target id (uuid, slug or id)")
    kind = django_filters.ChoiceFilter(field_name="kind", choices=AuditEvent.Kind.choices, label="Kind")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="Since (inclusive)")
    until = django_filters.IsoDateTimeFilter(
        method="filter_until", label="Until (inclusive; a date means its whole day)"
    )
    search = django_filters.CharFilter(method="filter_search", label="Search (action, actor, target)")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "target_type", "target_id", "kind", "since", "until", "search"]
        form = AuditEventFilterForm

    def filter_action(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.endswith("*"):
            return queryset.filter(action__startswith=value.rstrip("*"))
        return queryset.filter(action=value)

    def filter_until(self, queryset: QuerySet, name: str, value: datetime) -> QuerySet:
        raw = str(self.data.get("until", "")).strip()
        if len(raw) == len("2026-01-31"):  # a date alone: up to the end of that day
            return queryset.filter(created_at__lt=value + timedelta(days=1))
        return queryset.filter(created_at__lte=value)

    def filter_actor(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip().lstrip("@")
        if "@" in value:
            return queryset.filter(Q(actor_label__iexact=value) | Q(actor__email__iexact=value))
        return queryset.filter(actor__handle__iexact=value)

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = Q()
        for term in value.split()[:8]:
            query &= (
                Q(action__icontains=term)
                | Q(actor_label__icontains=term)
                | Q(actor__handle__icontains=term)
                | Q(target_type__icontains=term)
                | Q(target_id__icontains=term)
                | Q(target_label__icontains=term)
            )
        return queryset.filter(query)
