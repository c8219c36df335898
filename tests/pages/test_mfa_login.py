"""Signing in with MFA on: the password alone does not sign in; the current code does; a wrong code does not."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.pages.mfa import enrol_totp, fresh_totp, sign_in, wrong

pytestmark = pytest.mark.django_db


@pytest.fixture
def enrolled(world):
    user = world.user("member")
    secret, codes = enrol_totp(Client(), user.email)
    return user, secret, codes


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_password_then_code_signs_in(enrolled):
    user, secret, _ = enrolled
    client = Client()
    response = sign_in(client, user.email)
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert not signed_in(client)
    response = client.post(reverse("mfa_authenticate"), {"code": fresh_totp(secret)})
    assert response.status_code == 302
    assert signed_in(client)
    assert client.get(reverse("account-profile")).status_code == 200


def test_a_wrong_code_is_refused(enrolled):
    user, secret, _ = enrolled
    client = Client()
    sign_in(client, user.email)
    response = client.post(reverse("mfa_authenticate"), {"code": wrong(fresh_totp(secret))})
    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert not signed_in(client)


def test_a_code_cannot_be_used_twice(enrolled):
    user, secret, _ = enrolled
    code = fresh_totp(secret)
    first = Client()
    sign_in(first, user.email)
    first.post(reverse("mfa_authenticate"), {"code": code})
    assert signed_in(first)
    second = Client()
    sign_in(second, user.email)
    response = second.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 200
    assert not signed_in(second)


def test_guessing_codes_is_rate_limited(enrolled):
    user, secret, _ = enrolled
    client = Client()
    sign_in(client, user.email)
    for _ in range(5):
        client.post(reverse("mfa_authenticate"), {"code": wrong(fresh_totp(secret))})
    response = client.post(reverse("mfa_authenticate"), {"code": fresh_totp(secret)})
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert not signed_in(client)
