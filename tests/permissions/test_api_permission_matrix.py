"""Every API route answers each persona as DESIGN.md's role table says, with the organization private.

One test per (route, method, persona), each on a fresh world, so destructive requests never share objects.
"""

from __future__ import annotations

import pytest

from tests.permissions.checks import (
    api_client_as,
    assert_api_answer,
    assert_audit_follows_answer,
    assert_listing,
    audit_event_count,
    prepare,
    send_api,
)
from tests.permissions.matrix import API_ROUTES, PERSONAS

CASES = [pytest.param(route, persona, id=f"{route.id}-{persona}") for route in API_ROUTES for persona in PERSONAS]


@pytest.mark.parametrize(("route", "persona"), CASES)
def test_api_route_answers_the_persona_as_the_role_table_says(scene, route, persona):
    expected = route.access.private[persona]
    url, body, item = prepare(route, scene, persona)
    client = api_client_as(scene, persona)
    before = audit_event_count()
    response = send_api(route, url, body, client)
    assert_api_answer(expected, route, persona, url, response)
    assert_audit_follows_answer(route, persona, url, response, before)
    assert_listing(route, persona, url, response, item, public=False)
