"""The same matrix with organization ``acme`` public: anyone sees the org, its members and its teams, while
its admin-only collections (invitations, audit trail, tokens) stay refused and writes still need a role."""

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

CASES = [
    pytest.param(route, persona, id=f"{route.id}-{persona}")
    for route in API_ROUTES
    if route.under_org
    for persona in PERSONAS
]


@pytest.mark.parametrize(("route", "persona"), CASES)
def test_api_route_of_a_public_org_answers_the_persona_as_the_role_table_says(scene, route, persona):
    scene.make_public()
    expected = route.access.public[persona]
    url, body, item = prepare(route, scene, persona)
    client = api_client_as(scene, persona)
    before = audit_event_count()
    response = send_api(route, url, body, client)
    assert_api_answer(expected, route, persona, url, response)
    assert_audit_follows_answer(route, persona, url, response, before)
    assert_listing(route, persona, url, response, item, public=True)
