"""The online routes (the predict routes and KServe v2 infer) remember a token's run decision for a moment
(apps/inference/online/access.py): asked twice in a row, every persona gets the answer the role table gives, the
second time from the remembered decision, never another persona's."""

from __future__ import annotations

import pytest

from tests.permissions.checks import api_client_as, assert_api_answer, prepare, send_api
from tests.permissions.matrix import API_ROUTES, PERSONAS

ONLINE = ("api:model-version-predict", "api:model-predict", "api:deployment-predict", "kserve:model-infer",
          "kserve:model-version-infer")  # fmt: skip
CASES = [
    pytest.param(route, persona, id=f"{route.id}-{persona}")
    for route in API_ROUTES
    if route.name in ONLINE
    for persona in PERSONAS
]


@pytest.mark.parametrize(("route", "persona"), CASES)
def test_a_remembered_decision_answers_as_the_role_table_says(scene, route, persona):
    expected = route.access.private[persona]
    url, body, _item = prepare(route, scene, persona)
    client = api_client_as(scene, persona)
    for _ in range(2):
        response = send_api(route, url, body, client)
        assert_api_answer(expected, route, persona, url, response)
