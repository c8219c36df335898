"""A web process remembers a token that checked out for at most ``SHORT_LIVED_CACHE_SECONDS`` (apps/core/shortlived.py):
a revocation through the portal is seen at once, a change made behind its back within the bound, and each call still
gets objects of its own."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import revoke_api_token
from apps.core import shortlived
from tests.factories import UserFactory, make_token

pytestmark = pytest.mark.django_db
BOUND = 0.5


@pytest.fixture(autouse=True)
def short_bound(settings):
    settings.SHORT_LIVED_CACHE_SECONDS = BOUND


def profile(raw: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client.get("/api/v1/user/")


def test_a_token_revoked_through_the_portal_is_refused_at_once():
    user = UserFactory()
    raw = make_token(user)
    assert profile(raw).status_code == 200
    revoke_api_token(token=ApiToken.objects.get(user=user), by=user)
    response = profile(raw)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"


def test_a_token_revoked_behind_the_portals_back_is_refused_within_the_bound():
    user = UserFactory()
    raw = make_token(user)
    assert profile(raw).status_code == 200
    ApiToken.objects.filter(user=user).update(revoked_at=timezone.now())  # no signal, no invalidation
    assert profile(raw).status_code == 200  # remembered, as the bound allows
    time.sleep(BOUND + 0.1)
    assert profile(raw).status_code == 401


def test_a_deactivated_user_is_refused_at_once_when_saved_through_the_orm():
    user = UserFactory()
    raw = make_token(user)
    assert profile(raw).status_code == 200
    user.is_active = False
    user.save()
    assert profile(raw).status_code == 401


def test_an_invalidation_from_another_process_clears_what_was_remembered():
    user = UserFactory()
    raw = make_token(user)
    assert profile(raw).status_code == 200
    ApiToken.objects.filter(user=user).update(revoked_at=timezone.now())
    shortlived.clear_local()  # what the listener does when another process publishes a change
    assert profile(raw).status_code == 401


def test_each_call_gets_its_own_user_object():
    user = UserFactory()
    raw = make_token(user)
    from django.test import RequestFactory

    from apps.accounts.authentication import BearerTokenAuthentication

    first, _ = BearerTokenAuthentication().authenticate_token(raw, RequestFactory().get("/"))
    second, _ = BearerTokenAuthentication().authenticate_token(raw, RequestFactory().get("/"))
    assert first == second and first is not second
    first.name = "changed in one request"
    assert second.name != "changed in one request"
