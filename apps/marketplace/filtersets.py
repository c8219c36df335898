"""Filters for lists of models and versions (API and pages)."""

from __future__ import annotations

import django_filters
from django.db import connection
from django.db.models import Q

from apps.core.access import Visibility
from apps.marketplace.models import Model, ModelVersion, ValidationStatus, VersionStatus

UPLOADED = "uploaded"  # the source facet's name for models published on the portal itself


class ModelFilterSet(django_filters.FilterSet):
    """``owner`` (organization slug), ``task``, ``tags`` (comma-separated: all of them), ``license``,
    ``visibility``, ``q`` (words in the name, summary, card, tags or owner)."""

    owner = django_filters.CharFilter(field_name="organization__slug", lookup_expr="iexact")
    task = django_filters.CharFilter(lookup_expr="iexact")
    tags = django_filters.CharFilter(method="filter_tags", label="Comma-separated tags; a model has all of them")
    license = django_filters.CharFilter(lookup_expr="iexact")
    visibility = django_filters.ChoiceFilter(choices=Visibility.choices)
    source_registry = django_filters.CharFilter(lookup_expr="iexact")
    source = django_filters.CharFilter(
        method="filter_source", label="Where models come from: a registry's slug, or “uploaded” for the portal's own"
    )
    q = django_filters.CharFilter(method="filter_q", label="Words in the name, summary, card, tags or owner")

    class Meta:
        model = Model
        fields = ["owner", "task", "tags", "license", "visibility", "source_registry", "source", "q"]

    def filter_source(self, queryset, name, value):
        if value.strip().lower() == UPLOADED:
            return queryset.filter(source_registry="")
        return queryset.filter(source_registry__iexact=value.strip())

    def filter_tags(self, queryset, name, value):
        for tag in {t.strip().lower() for t in value.split(",") if t.strip()}:
            if connection.vendor == "postgresql":
                queryset = queryset.filter(tags__contains=[tag])
            else:  # SQLite has no JSON containment: match the quoted tag in the JSON text
                queryset = queryset.filter(tags__icontains=f'"{tag}"')
        return queryset

    def filter_q(self, queryset, name, value):
        for word in value.split()[:10]:
            queryset = queryset.filter(
                Q(name__icontains=word)
                | Q(summary__icontains=word)
                | Q(card__icontains=word)
                | Q(tags__icontains=word)
                | Q(organization__slug__icontains=word)
                | Q(task__icontains=word)
            )
        return queryset


class OrganizationModelFilterSet(ModelFilterSet):
    """The organization's models; ``deleted=true`` lists its soft-deleted ones instead (admins), to restore them.

    The view picks the rows for ``deleted`` (it needs the delete right); the filter only declares it.
    """

    deleted = django_filters.BooleanFilter(method="filter_deleted", label="Soft-deleted models (admins)")

    class Meta(ModelFilterSet.Meta):
        fields = [*ModelFilterSet.Meta.fields, "deleted"]

    def filter_deleted(self, queryset, name, value):
        return queryset


class VersionFilterSet(django_filters.FilterSet):
    """``status`` and ``validation_status``."""

    status = django_filters.ChoiceFilter(choices=VersionStatus.choices)
    validation_status = django_filters.ChoiceFilter(choices=ValidationStatus.choices)

    class Meta:
        model = ModelVersion
        fields = ["status", "validation_status"]
