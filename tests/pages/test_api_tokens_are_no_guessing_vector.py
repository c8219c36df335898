"""The API's Bearer tokens cannot be guessed (256-bit secrets, HMAC-checked) and guessing is throttled anyway:
after the ``failed_token`` rate of invalid tokens from one address, that address waits (429), even with a
valid token; other addresses are unaffected."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.lockout import FailedTokenThrottle
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def client(token: str, ip: str = "192.0.2.10") -> APIClient:
    api = APIClient(REMOTE_ADDR=ip)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_invalid_tokens_are_throttled_per_address(world):
    limit = FailedTokenThrottle().num_requests
    valid = make_token(world.user("member"))
    guess = valid[:-6] + "AAAAAA"
    for _ in range(limit):
        response = client(guess).get("/api/v1/user/")
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"
    throttled = client(guess).get("/api/v1/user/")
    assert throttled.status_code == 429
    assert "Retry-After" in throttled
    assert client(valid).get("/api/v1/user/").status_code == 429
    assert client(valid, ip="192.0.2.99").get("/api/v1/user/").status_code == 200


def test_valid_tokens_do_not_count_as_failures(world):
    limit = FailedTokenThrottle().num_requests
    valid = make_token(world.user("member"))
    for _ in range(limit + 2):
        assert client(valid).get("/api/v1/user/").status_code == 200
