"""The API's JSON renderer (apps/core/api/renderers.py): orjson where it writes what DRF's renderer writes, DRF's own
renderer for the rest, so that answers are the same JSON either way."""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal

from django.utils.translation import gettext_lazy
from rest_framework import renderers
from rest_framework.utils.serializer_helpers import ReturnDict

from apps.core.api.renderers import JSONRenderer

WHEN = datetime.datetime(2026, 12, 7, 4, 40, 31, 787787, tzinfo=datetime.UTC)


def both(data, media_type="application/json", context=None):
    fast = JSONRenderer().render(data, media_type, context or {})
    drf = renderers.JSONRenderer().render(data, media_type, context or {})
    return fast, drf


def test_what_orjson_writes_is_what_drf_writes():
    data = ReturnDict(
        {
            "id": uuid.UUID("6ec72d19-7c0b-4538-8a0e-1d1926fb4f1b"),
            "created_at": WHEN,
            "day": WHEN.date(),
            "name": 'Ünïcødé ✓ “quoted” \\ and " and \n',
            "floats": [0.1, 1.5, -2.25, 384.0, 0.30000000000000004],
            "ints": [0, -1, 2**53],
            "nested": {"a": [True, False, None], "b": {}},
            7: "a key that is a number",
        },
        serializer=None,
    )
    fast, drf = both(data)
    assert json.loads(fast) == json.loads(drf)
    assert b'"created_at":"2026-12-07T04:40:31.787787Z"' in fast  # as DRF writes an aware UTC time
    assert b"\\u00dc" not in fast and "Ü".encode() in fast  # UTF-8, as DRF's (UNICODE_JSON)


def test_line_and_paragraph_separators_are_escaped_as_drf_escapes_them():
    fast, drf = both({"text": "a\u2028b\u2029c"})
    assert fast == drf == b'{"text":"a\\u2028b\\u2029c"}'


def test_values_orjson_does_not_take_go_to_drf():
    data = {"price": Decimal("1.10"), "label": gettext_lazy("Run"), "took": datetime.timedelta(seconds=3)}
    fast, drf = both(data)
    assert fast == drf


def test_an_indented_answer_is_drfs():
    fast, drf = both({"a": [1, 2]}, "application/json; indent=2", {"indent": None})
    assert fast == drf and b"\n" in fast


def test_non_finite_floats_are_null_where_drf_fails():
    assert JSONRenderer().render({"x": float("nan"), "y": float("inf")}) == b'{"x":null,"y":null}'


def test_an_api_answer_renders_through_it(world):
    from tests.conftest import api_client_for

    answer = api_client_for(world.user("member")).get("/api/v1/user/")
    assert answer.status_code == 200
    assert answer.accepted_renderer.__class__ is JSONRenderer
    assert answer.json()["handle"] == world.user("member").handle
