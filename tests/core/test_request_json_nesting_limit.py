"""JSON nested past INPUT_MAX_NESTING_DEPTH (64 levels of arrays and objects) is refused with a 400 before it is
parsed, on every JSON route (the bad-input pass in tests/permissions tries them all); within the limit, and
brackets inside strings, pass. Before, 5,000 levels exhausted Python's recursion: a 500."""

from __future__ import annotations

import json

import pytest

from apps.organizations.models import Organization
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def patch_org(world, text: str):
    client = api_client_for(world.user("owner"))
    return client.generic("PATCH", "/api/v1/orgs/acme/", text, content_type="application/json")


def test_json_nested_5000_deep_answers_400_nesting_too_deep_and_changes_nothing(world):
    before = Organization.objects.values().get(slug="acme")
    response = patch_org(world, '{"description": ' + nested(5000) + "}")
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "nesting_too_deep"
    assert "nested deeper than 64 levels" in body["detail"]
    assert Organization.objects.values().get(slug="acme") == before


def test_a_body_of_only_opening_brackets_is_refused_the_same_way(world):
    response = patch_org(world, "[" * 100_000)
    assert response.status_code == 400
    assert response.json()["code"] == "nesting_too_deep"


def test_nesting_at_the_limit_is_parsed_and_the_field_judged_on_its_own(world):
    at_limit = patch_org(world, '{"description": ' + nested(63) + "}")  # 63 arrays inside the object: 64 levels
    assert at_limit.status_code == 400
    assert at_limit.json()["code"] == "validation_error"
    assert "description" in at_limit.json()
    past = patch_org(world, '{"description": ' + nested(64) + "}")
    assert past.json()["code"] == "nesting_too_deep"


def test_brackets_inside_strings_do_not_count(world):
    text = "[[{" * 2000 + '"\\" ]]' + "}" * 10
    response = patch_org(world, json.dumps({"description": text[:1000]}))
    assert response.status_code == 200, response.content[:300]
    assert Organization.objects.get(slug="acme").description == text[:1000]


def test_the_operator_sets_the_limit(world, settings):
    settings.INPUT_MAX_NESTING_DEPTH = 8
    response = patch_org(world, '{"description": ' + nested(8) + "}")
    assert response.json()["code"] == "nesting_too_deep"
    assert "8 levels" in response.json()["detail"]


def test_a_large_flat_body_within_the_limit_is_read_as_before(world):
    rows = json.dumps({"description": "x", "extra": [[float(i)] for i in range(200_000)]})
    response = patch_org(world, rows)
    assert response.status_code == 200, response.content[:300]
