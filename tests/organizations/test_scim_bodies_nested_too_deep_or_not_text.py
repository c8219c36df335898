"""SCIM bodies go through the same reader as the API's (apps.core.parsing): JSON nested past
INPUT_MAX_NESTING_DEPTH, or holding a lone surrogate, answers a SCIM 400 ``invalidSyntax`` saying why, and
provisions nobody. Before, 5,000 levels exhausted Python's recursion: a 500."""

from __future__ import annotations

import pytest

from apps.accounts.models import User
from tests.sso_support import scim_acme  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"schemas": [], "userName": "a@acme.example", "name": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper"),
        ('{"schemas": [], "userName": "a\\ud83d@acme.example"}', "userName: holds a lone UTF-16 surrogate"),
    ],
    ids=["nested", "lone-surrogate"],
)
def test_a_scim_body_nested_too_deep_or_not_text_answers_invalid_syntax(scim_acme, body, reason):  # noqa: F811
    users = User.objects.count()
    response = scim_acme.call("POST", "/Users", body)
    assert response.status_code == 400, response.content[:300]
    error = response.json()
    assert error["schemas"] == [SCIM_ERROR] and error["scimType"] == "invalidSyntax"
    assert reason in error["detail"]
    assert User.objects.count() == users
