"""Password guessing on the sign-in form: after AXES_FAILURE_LIMIT wrong passwords for an account from one
address, that pair is locked out (even the right password is refused) with a page that says why and until when;
the lock lifts after AXES_COOLOFF_TIME or with ``manage.py axes_reset``."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def attempt(client: Client, email: str, password: str):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def lock_out(client: Client, email: str, fresh_cache):
    responses = [attempt(client, email, "wrong-password") for _ in range(settings.AXES_FAILURE_LIMIT)]
    # allauth's own per-account rate limit counts in the cache; start a fresh one so that what is left is axes' lock.
    fresh_cache()
    return responses


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_failures_below_the_limit_only_say_the_password_is_wrong(world):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = attempt(client, world.user("member").email, "wrong-password")
        assert response.status_code == 200
        assert "not correct" in response.content.decode()
    assert attempt(client, world.user("member").email, PASSWORD).status_code == 302
    assert signed_in(client)


def test_the_limit_locks_the_account_out_with_a_clear_page(world, fresh_cache):
    email = world.user("member").email
    client = Client()
    responses = lock_out(client, email, fresh_cache)
    assert [r.status_code for r in responses[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    locked = responses[-1]
    assert locked.status_code == 429
    body = locked.content.decode()
    assert "Too many failed sign-ins" in body and email in body

    right = attempt(client, email, PASSWORD)
    assert right.status_code == 429
    assert not signed_in(client)
    assert AccessAttempt.objects.filter(username=email, failures_since_start__gte=settings.AXES_FAILURE_LIMIT).exists()


def test_the_lock_is_per_account_other_accounts_still_sign_in(world, fresh_cache):
    client = Client()
    lock_out(client, world.user("member").email, fresh_cache)
    assert attempt(Client(), world.user("viewer").email, PASSWORD).status_code == 302


def test_the_address_is_matched_case_insensitively(world, fresh_cache):
    client = Client()
    lock_out(client, world.user("member").email.upper(), fresh_cache)
    assert attempt(client, world.user("member").email, PASSWORD).status_code == 429


def test_axes_reset_releases_the_lock(world, fresh_cache):
    email = world.user("member").email
    client = Client()
    lock_out(client, email, fresh_cache)
    call_command("axes_reset")
    response = attempt(client, email, PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_the_lock_lifts_after_the_cool_off(world, settings, fresh_cache):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    email = world.user("member").email
    client = Client()
    lock_out(client, email, fresh_cache)
    assert attempt(client, email, PASSWORD).status_code == 429
    fresh_cache()
    time.sleep(2.5)
    response = attempt(client, email, PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)
