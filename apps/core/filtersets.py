"""The jobs pages' filters: the status, and the kind chosen from a select of what people call each kind."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from apps.core.job_services import kind_choices, kinds_like
from apps.core.jobs import Job, JobStatus


class JobPageFilterSet(django_filters.FilterSet):
    """``?status=running&kind=inference.predict``: the kind is one of ``kind_choices`` (a select, not free text) and
    takes the kinds that share its label with it (both prediction kinds are "Prediction")."""

    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices, label="Status")
    kind = django_filters.ChoiceFilter(choices=(), method="filter_kind", label="Kind", empty_label="any")

    class Meta:
        model = Job
        fields = ["status", "kind"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read when the page is asked for: the kinds are registered as the apps' tasks modules are imported.
        self.filters["kind"].extra["choices"] = kind_choices()

    def filter_kind(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(kind__in=kinds_like(value)) if value else queryset
