"""allauth's own rate limits are on (settings.ACCOUNT_RATE_LIMITS); they count in the cache (Redis in tests)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("account_login")


def test_the_rate_limits_are_configured():
    limits = django_settings.ACCOUNT_RATE_LIMITS
    assert limits is not False
    for action in ("login_failed", "signup", "reset_password", "confirm_email", "change_password"):
        assert limits.get(action), action


def test_repeated_failed_logins_for_one_account_are_refused_even_with_the_right_password(settings):
    settings.AXES_ENABLED = False  # django-axes would lock the account first; this tests allauth's own limit
    UserFactory(email="grace@example.com")
    per_key = int(settings.ACCOUNT_RATE_LIMITS["login_failed"].split(",")[1].split("/")[0])
    client = Client()
    for _ in range(per_key):
        response = client.post(LOGIN, {"login": "grace@example.com", "password": "wrong-password"})
        assert response.status_code == 200
        assert "Too many" not in str(response.context["form"].errors)

    response = client.post(LOGIN, {"login": "grace@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed login attempts" in str(response.context["form"].errors)
    assert "_auth_user_id" not in client.session


def test_another_account_is_not_limited_by_someone_elses_failures(settings):
    settings.AXES_ENABLED = False
    UserFactory(email="grace@example.com")
    UserFactory(email="ada@example.com")
    client = Client()
    for _ in range(5):
        client.post(LOGIN, {"login": "grace@example.com", "password": "wrong-password"})
    client.post(LOGIN, {"login": "ada@example.com", "password": PASSWORD})
    assert "_auth_user_id" in client.session


def test_signups_from_one_address_are_limited(settings):
    per_ip = int(settings.ACCOUNT_RATE_LIMITS["signup"].split("/")[0])
    client = Client()
    statuses = []
    for n in range(per_ip + 1):
        response = client.post(
            reverse("account_signup"),
            {
                "email": f"user{n}@example.com",
                "username": f"user-{n}",
                "password1": "a-long-unusual-passphrase",
                "password2": "a-long-unusual-passphrase",
            },
        )
        statuses.append(response.status_code)
    assert statuses[:per_ip] == [302] * per_ip
    assert statuses[-1] == 429
