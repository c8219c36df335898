"""``last_used_at`` is written at most once a minute: one UPDATE for the first use in a minute, none after."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from tests.factories import UserFactory, make_token

pytestmark = pytest.mark.django_db


class Clock:
    """``timezone.now()`` at a time the test chooses (no sleeping)."""

    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fixed = Clock(timezone.now().replace(microsecond=0))
    monkeypatch.setattr(timezone, "now", fixed)
    return fixed


def token_updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and '"accounts_apitoken"' in q["sql"]]


def call_api(raw: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="192.0.2.7")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("api:user-detail")).status_code == 200
    return token_updates(queries.captured_queries)


def test_the_first_use_records_time_and_address(clock):
    raw = make_token(UserFactory())
    assert len(call_api(raw)) == 1
    token = ApiToken.objects.get()
    assert token.last_used_at == clock.now
    assert token.last_used_ip == "192.0.2.7"


def test_uses_within_a_minute_write_nothing(clock):
    raw = make_token(UserFactory())
    call_api(raw)
    first = clock.now
    for seconds in (1, 30, 59):
        clock.now = first + timedelta(seconds=seconds)
        assert call_api(raw) == []
    assert ApiToken.objects.get().last_used_at == first


def test_a_use_a_minute_later_writes_again(clock):
    raw = make_token(UserFactory())
    call_api(raw)
    clock.now += timedelta(seconds=61)
    assert len(call_api(raw)) == 1
    assert ApiToken.objects.get().last_used_at == clock.now


def test_the_update_is_conditional_so_concurrent_requests_do_not_move_it_back(clock):
    raw = make_token(UserFactory())
    call_api(raw)
    stale = ApiToken.objects.get()
    stale.last_used_at = None  # a request that read the row before the first use was recorded
    stale.touch("192.0.2.8")
    token = ApiToken.objects.get()
    assert token.last_used_ip == "192.0.2.7"
