"""The API's rate limits (apps/core/api/throttling.py) with leases: a web process takes its permits from the window's
counter in Redis a lease at a time (a hundredth of the rate, at most 100; one under 200 a window) and spends them
without asking again. The limit holds exactly: what was leased is counted, so no caller gets past the rate, in one
process or across several (a real gunicorn of two processes below). Real Redis, the test's own keys."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework.settings import api_settings

from apps.core.api import throttling
from tests import jobs_support
from tests.conftest import api_client_for
from tests.factories import make_token

USER = "/api/v1/user/"


@pytest.fixture
def user_rate(monkeypatch):
    """Set the ``user`` rate for this test (DRF reads its rates once, into the throttle class)."""

    def set_rate(rate: str) -> None:
        monkeypatch.setattr(
            throttling.UserRateThrottle, "THROTTLE_RATES", {**api_settings.DEFAULT_THROTTLE_RATES, "user": rate}
        )

    return set_rate


def counter(client, user) -> int:
    keys = list(client.scan_iter(f"*throttle_user_{user.pk}:w*"))
    return sum(int(client.get(key)) for key in keys)


@pytest.fixture
def redis_client():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


@pytest.fixture
def fresh_counters(redis_client):
    def clear() -> None:
        for key in redis_client.scan_iter("*throttle_user_*"):
            redis_client.delete(key)

    clear()
    throttling.forget_leases()
    yield
    clear()


def test_lease_sizes():
    assert [throttling.lease_size(limit) for limit in (1, 3, 20, 199, 200, 1000, 6000, 10_000, 10**7)] == [
        1, 1, 1, 1, 2, 10, 60, 100, 100,
    ]  # fmt: skip


@pytest.mark.django_db
def test_a_small_rate_counts_every_request_in_redis_and_refuses_the_one_past_it(
    world, user_rate, fresh_counters, redis_client
):
    user_rate("5/minute")
    member = world.user("member")
    client = api_client_for(member)
    answers = [client.get(USER) for _ in range(7)]
    assert [answer.status_code for answer in answers] == [200] * 5 + [429] * 2
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    assert answers[-1].json()["code"] == "throttled"
    assert counter(redis_client, member) == 7  # one a request: each asked Redis


@pytest.mark.django_db
def test_a_large_rate_asks_redis_once_a_lease(world, user_rate, fresh_counters, redis_client):
    user_rate("1000/minute")  # leases of 10
    member = world.user("member")
    client = api_client_for(member)
    assert [client.get(USER).status_code for _ in range(25)] == [200] * 25
    assert counter(redis_client, member) == 30  # three leases: 25 requests, 5 permits left in this process
    assert [client.get(USER).status_code for _ in range(5)] == [200] * 5
    assert counter(redis_client, member) == 30  # spent from the lease: Redis not asked


@pytest.mark.django_db
def test_the_limit_holds_exactly_when_others_used_most_of_the_window(world, user_rate, fresh_counters, redis_client):
    """Other processes leased 995 of a rate of 1,000: this one gets the 5 left, in a lease cut to fit, then 429."""
    user_rate("1000/minute")
    member = world.user("member")
    client = api_client_for(member)
    client.get(USER)  # the window's key exists now (one lease of 10)
    (key,) = list(redis_client.scan_iter(f"*throttle_user_{member.pk}:w*"))
    throttling.forget_leases()  # as a process that leased nothing yet
    redis_client.set(key, 995, keepttl=True)
    answers = [client.get(USER).status_code for _ in range(8)]
    assert answers == [200] * 5 + [429] * 3


@pytest.mark.django_db
def test_a_rate_lowered_while_permits_are_leased_is_asked_of_redis_at_once(world, user_rate, fresh_counters):
    user_rate("6000/minute")
    member = world.user("member")
    client = api_client_for(member)
    assert client.get(USER).status_code == 200  # a lease of 60: 59 left here
    user_rate("3/minute")
    assert [client.get(USER).status_code for _ in range(3)] == [429] * 3  # 60 already counted in this window


@pytest.mark.django_db
def test_each_caller_has_its_own_lease(world, user_rate, fresh_counters, redis_client):
    user_rate("1000/minute")
    member, admin = world.user("member"), world.user("admin")
    for _ in range(3):
        assert api_client_for(member).get(USER).status_code == 200
    assert api_client_for(admin).get(USER).status_code == 200
    assert counter(redis_client, member) == 10 and counter(redis_client, admin) == 10


@pytest.mark.django_db
def test_redis_down_refuses_nothing(world, user_rate, fresh_counters, monkeypatch):
    user_rate("1000/minute")
    client = api_client_for(world.user("member"))

    class Down:
        def pipeline(self, **_):
            raise ConnectionError("Redis is down")

    monkeypatch.setattr(throttling, "_redis_of_cache", lambda _cache: Down())
    assert [client.get(USER).status_code for _ in range(3)] == [200] * 3


def get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            json.loads(response.read())
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_gunicorn_processes_together_let_through_exactly_the_rate(world, tmp_path, redis_client):
    """A rate of 300 a minute (leases of 3) on a portal of two processes of four threads: 360 requests, eight at a
    time, each on a new connection: exactly 300 are answered, 60 refused, whichever process took them."""
    for key in redis_client.scan_iter("*throttle_user_*"):
        redis_client.delete(key)
    token = make_token(world.user("member"))
    server, base = jobs_support.serve_portal(
        tmp_path / "web", workers=2, threads=4, env={"API_THROTTLE_USER": "300/minute"}
    )
    try:
        jobs_support.wait_for_portal(base)
        while time.time() % 60 > 40:  # all in one window: a minute's edge would start a new count
            time.sleep(0.5)
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: get(f"{base}{USER}", token), range(360)))
    finally:
        jobs_support.stop_portal(server)
    assert (statuses.count(200), statuses.count(429)) == (300, 60)
