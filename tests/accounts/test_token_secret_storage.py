"""Only an HMAC of the token is stored: the raw token (or its secret part) is in no table, no audit event."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, hash_token_secret
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def every_stored_value() -> list[str]:
    """Every column of every row of every table the project's models own, as text."""
    values = []
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed or model._meta.proxy:
            continue
        for row in model._base_manager.values_list():
            values.extend(str(value) for value in row)
    return values


def test_the_raw_token_and_its_secret_appear_nowhere_in_the_database():
    user = UserFactory()
    client = APIClient()
    client.force_login(user)
    raw = client.post(reverse("api:user-token-list"), {"name": "ci", "scope": "admin"}).json()["token"]
    secret = raw.split("_", 2)[2]
    client.delete(reverse("api:user-token-detail", kwargs={"uuid": ApiToken.objects.get().uuid}))

    stored = every_stored_value()
    assert stored, "the scan read nothing"
    assert not [value for value in stored if secret in value]


def test_the_stored_hash_is_the_hmac_sha256_of_the_token_keyed_by_the_secret_key():
    user = UserFactory()
    client = APIClient()
    client.force_login(user)
    body = client.post(reverse("api:user-token-list"), {"name": "ci", "scope": "read"}).json()
    token = ApiToken.objects.get()
    expected = hmac.new(settings.SECRET_KEY.encode(), body["token"].encode(), hashlib.sha256).hexdigest()
    assert token.secret_hash == expected == hash_token_secret(body["token"])
    assert token.prefix == body["prefix"]
    assert body["token"] != token.secret_hash


def test_a_changed_secret_key_invalidates_every_token(settings):
    user = UserFactory()
    client = APIClient()
    client.force_login(user)
    raw = client.post(reverse("api:user-token-list"), {"name": "ci", "scope": "read"}).json()["token"]
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert bearer.get(reverse("api:user-detail")).status_code == 401
