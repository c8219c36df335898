"""What the sync engine hands to COPY and to its array lookups, formatted once in Python, reaches PostgreSQL as the
values the ORM would have written: UUIDs of version 4, timestamps, and arrays whose elements keep every quote,
backslash, comma and brace."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection

from apps.marketplace.models import Model
from apps.registries.bulk import any_of, array_literal, copy_timestamp, new_uuids
from apps.registries.models import RegistryModel
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

AWKWARD = ["plain", 'with "quotes"', "back\\slash", "comma,and{braces}", "NULL", " spaced ", "ünïcode ✓", ""]


def test_new_uuids_are_distinct_version_4_uuids():
    values = new_uuids(2000)

    parsed = [uuid.UUID(value) for value in values]
    assert len(set(values)) == 2000
    assert {value.version for value in parsed} == {4}
    assert {value.variant for value in parsed} == {uuid.RFC_4122}
    assert all(str(value) == text for value, text in zip(parsed, values, strict=True))


def test_a_copy_timestamp_reads_back_as_the_same_instant():
    moment = dt.datetime(2026, 12, 6, 13, 45, 7, 123456, tzinfo=dt.UTC)

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [copy_timestamp(moment)])
        (stored,) = cursor.fetchone()

    assert stored == moment


def test_an_array_literal_keeps_every_element_as_it_was():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [array_literal(AWKWARD)])
        (stored,) = cursor.fetchone()

    assert stored == AWKWARD


def test_any_of_finds_exactly_the_rows_listed_by_text_and_by_integer():
    organization = OrganizationFactory()
    made = {name: Model.objects.create(organization=organization, name=f"m{n}", external_id=name)
            for n, name in enumerate(AWKWARD)}  # fmt: skip
    wanted = ['with "quotes"', "back\\slash", "NULL", "missing"]

    by_text = Model.objects.filter(any_of(Model, "external_id", wanted)).values_list("external_id", flat=True)
    by_id = Model.objects.filter(any_of(Model, "id", [made["plain"].pk, made[""].pk])).values_list("pk", flat=True)

    assert sorted(by_text) == sorted(['with "quotes"', "back\\slash", "NULL"])
    assert sorted(by_id) == sorted([made["plain"].pk, made[""].pk])


def test_any_of_compares_text_in_full_even_past_the_column_length():
    # An id longer than the column can never match; a varchar(n) cast of the array would have cut it to n
    # characters and matched a stored id that is its prefix.
    stored = "x" * 300
    organization = OrganizationFactory()
    model = Model.objects.create(organization=organization, name="long", external_id=stored)

    found = Model.objects.filter(any_of(Model, "external_id", [stored + "tail"]))
    exact = Model.objects.filter(any_of(Model, "external_id", [stored]))

    assert not found.exists()
    assert list(exact) == [model]
    assert RegistryModel.objects.filter(any_of(RegistryModel, "external_id", [stored])).count() == 0
