"""``Authorization: Bearer <token>``: which tokens authenticate, and the 401 each bad one answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from tests.factories import UserFactory, make_token

pytestmark = pytest.mark.django_db

PROFILE = "api:user-detail"


def get_profile(header: str | None):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client.get(reverse(PROFILE))


def test_a_valid_token_authenticates_its_owner():
    user = UserFactory()
    response = get_profile(f"Bearer {make_token(user)}")
    assert response.status_code == 200
    assert response.json()["handle"] == user.handle


def test_the_bearer_keyword_is_case_insensitive():
    user = UserFactory()
    assert get_profile(f"bearer {make_token(user)}").status_code == 200


def test_anonymous_caller_gets_401_with_a_bearer_challenge():
    response = get_profile(None)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Bearer  ", "Bearer one two"])
def test_a_malformed_bearer_header_gets_401_malformed_token(header):
    response = get_profile(header)
    assert response.status_code == 401
    assert response.json()["code"] == "malformed_token"


def test_a_blank_authorization_header_is_treated_as_no_credentials():
    response = get_profile("   ")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("raw", ["not-a-token", "gpux_", "gpux_nounderscore", "ghp_abcdef_123"])
def test_a_token_not_in_our_format_gets_401_invalid_token(raw):
    response = get_profile(f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_an_unknown_prefix_gets_401_invalid_token():
    user = UserFactory()
    raw = make_token(user)
    prefix = raw.split("_")[1]
    unknown = raw.replace(prefix, "0" * len(prefix) if prefix != "0" * len(prefix) else "1" * len(prefix), 1)
    response = get_profile(f"Bearer {unknown}")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_a_known_prefix_with_a_wrong_secret_gets_401_invalid_token():
    user = UserFactory()
    raw = make_token(user)
    wrong = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    response = get_profile(f"Bearer {wrong}")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response.json()["detail"] == "Invalid token."


def test_a_revoked_token_gets_401_token_revoked():
    user = UserFactory()
    raw = make_token(user)
    ApiToken.objects.filter(user=user).update(revoked_at=timezone.now())
    response = get_profile(f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"


def test_an_expired_token_gets_401_token_expired():
    user = UserFactory()
    raw = make_token(user, expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = get_profile(f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_a_token_of_a_deactivated_user_gets_401_user_inactive():
    user = UserFactory()
    raw = make_token(user)
    user.is_active = False
    user.save()
    response = get_profile(f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"


def test_another_authorization_scheme_is_not_taken_for_a_token():
    user = UserFactory()
    response = get_profile(f"Token {make_token(user)}")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
