"""Every page answers each persona as DESIGN.md's role table says, as the API does: with a signed-in session
(force_login) instead of a token; anonymous visitors are sent to the login page.

The same cases run with organization ``acme`` private and, for its pages, public.
"""

from __future__ import annotations

import pytest

from tests.permissions.checks import (
    assert_page_audit_follows_answer,
    assert_status,
    audit_event_count,
    page_client_as,
    prepare,
    send_page,
)
from tests.permissions.matrix import PAGE_ROUTES, PERSONAS

CASES = [pytest.param(route, persona, id=f"{route.id}-{persona}") for route in PAGE_ROUTES for persona in PERSONAS]
PUBLIC_CASES = [
    pytest.param(route, persona, id=f"{route.id}-{persona}")
    for route in PAGE_ROUTES
    if route.under_org
    for persona in PERSONAS
]


@pytest.mark.parametrize(("route", "persona"), CASES)
def test_page_answers_the_persona_as_the_role_table_says(scene, route, persona):
    url, body, _item = prepare(route, scene, persona)
    client = page_client_as(scene, persona)
    before = audit_event_count()
    response = send_page(route, url, body, client)
    assert_status(route.access.private[persona], route, persona, url, response)
    assert_page_audit_follows_answer(route, persona, url, response, before)


@pytest.mark.parametrize(("route", "persona"), PUBLIC_CASES)
def test_page_of_a_public_org_answers_the_persona_as_the_role_table_says(scene, route, persona):
    scene.make_public()
    url, body, _item = prepare(route, scene, persona)
    client = page_client_as(scene, persona)
    before = audit_event_count()
    response = send_page(route, url, body, client)
    assert_status(route.access.public[persona], route, persona, url, response)
    assert_page_audit_follows_answer(route, persona, url, response, before)
