"""Quotas: per-minute API and prediction limits per organization and token (429 with Retry-After, naming the
quota), compute seconds per month by device, storage defaulted by the plan; limits from the organization, else its
plan, else the default plan; operators' changes audited."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.analytics import quotas, usage
from apps.analytics.models import OrganizationQuota, Plan
from apps.audit.models import AuditEvent
from apps.marketplace import storage
from tests.conftest import api_client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits():
    quotas.forget_cached_limits()
    client = usage.client()
    usage.flush()
    for prefix in (quotas.RATE_PREFIX, usage.COMPUTE_PREFIX):  # organization ids come again in later tests
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    yield
    quotas.forget_cached_limits()


def _limit(org, **limits):
    quota, _ = OrganizationQuota.objects.update_or_create(organization=org, defaults=limits)
    quotas.forget_cached_limits()
    return quota


def test_the_request_past_the_organizations_limit_answers_429_with_retry_after(world):
    _limit(world.org, api_requests_per_minute=3)
    client = api_client_for(world.user("member"), organization=world.org)
    answers = [client.get("/api/v1/user/") for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "3 API requests per minute" in refused.json()["detail"]
    assert (refused.json()["code"], refused.json()["quota"]) == ("rate_limited", "api_requests_per_minute")


def test_each_token_has_its_own_limit_within_the_organizations(world):
    _limit(world.org, api_requests_per_minute=100, token_api_requests_per_minute=2)
    first = api_client_for(world.user("member"), organization=world.org)
    second = api_client_for(world.user("admin"), organization=world.org)
    assert [first.get("/api/v1/user/").status_code for _ in range(3)] == [200, 200, 429]
    assert "this API token" in first.get("/api/v1/user/").json()["detail"]
    assert second.get("/api/v1/user/").status_code == 200


def test_an_unbound_token_counts_against_its_users_personal_organization(world):
    user = UserFactory()
    _limit(user.personal_organization, api_requests_per_minute=1)
    client = api_client_for(user)
    assert [client.get("/api/v1/user/").status_code for _ in range(2)] == [200, 429]


def test_limits_come_from_the_organization_then_its_plan_then_the_default_plan(world):
    assert quotas.limits_for(world.org.pk).api_requests_per_minute is None  # no plan at all: unlimited
    Plan.objects.create(slug="free", name="Free", is_default=True, api_requests_per_minute=10, gpu_seconds_per_month=60)
    team = Plan.objects.create(slug="team", name="Team", api_requests_per_minute=100)
    quotas.forget_cached_limits()
    assert quotas.limits_for(world.org.pk).api_requests_per_minute == 10
    _limit(world.org, plan=team)
    limits = quotas.limits_for(world.org.pk)
    assert (limits.api_requests_per_minute, limits.gpu_seconds_per_month, limits.plan) == (100, None, "Team")
    _limit(world.org, plan=team, api_requests_per_minute=5)
    assert quotas.limits_for(world.org.pk).api_requests_per_minute == 5


def test_compute_seconds_past_the_months_allowance_refuse_new_runs_until_next_month(world):
    _limit(world.org, gpu_seconds_per_month=10)
    usage.record("prediction", organization_id=world.org.pk, compute_seconds=6, device="gpu")
    quotas.check_compute(organization_id=world.org.pk, device="gpu")  # 6 of 10
    usage.record("prediction", organization_id=world.org.pk, compute_seconds=4.5, device="gpu")
    with pytest.raises(quotas.QuotaExceeded) as refused:
        quotas.check_compute(organization_id=world.org.pk, device="gpu", organization_label="acme")
    assert refused.value.status_code == 429
    assert (
        refused.value.wait == quotas.seconds_until_next_month()
        or abs(refused.value.wait - quotas.seconds_until_next_month()) <= 2
    )
    assert "10.5 of its 10 GPU seconds" in str(refused.value.detail)
    quotas.check_compute(organization_id=world.org.pk, device="cpu")  # the CPU has no limit


def test_the_compute_check_reads_redis_once_per_cache_time_and_counts_this_process_at_once(world, monkeypatch):
    """A prediction's compute check does not send the usage buffer and read the month's counters on every request:
    they are read once per ``QUOTA_CACHE_SECONDS``; what this process records meanwhile counts at once, what another
    process spent (written straight into the counter here, as that process's flush would) once the time is up."""
    _limit(world.org, gpu_seconds_per_month=10)
    client = usage.client()
    reads: list[str] = []
    hgetall = type(client).hgetall

    def counting(self, name):
        reads.append(name)
        return hgetall(self, name)

    monkeypatch.setattr(type(client), "hgetall", counting)
    clock = [1000.0]
    monkeypatch.setattr(quotas, "_clock", lambda: clock[0])
    usage.record("prediction", organization_id=world.org.pk, compute_seconds=3, device="gpu")
    assert quotas.compute_used(world.org.pk)["gpu"] == 3.0
    assert len(reads) == 1
    for _ in range(5):
        quotas.check_compute(organization_id=world.org.pk, device="gpu")
    assert len(reads) == 1  # five checks, no round trip
    usage.record("prediction", organization_id=world.org.pk, compute_seconds=2, device="gpu")  # this process
    assert quotas.compute_used(world.org.pk)["gpu"] == 5.0  # at once
    key = f"{usage.COMPUTE_PREFIX}{world.org.pk}:{usage.month_key()}"
    client.hincrbyfloat(key, "gpu", 4)  # another process's flush
    assert quotas.compute_used(world.org.pk)["gpu"] == 5.0  # not seen yet
    clock[0] += 10.5  # QUOTA_CACHE_SECONDS later
    assert quotas.compute_used(world.org.pk)["gpu"] == 9.0
    assert len(reads) == 2
    usage.record("prediction", organization_id=world.org.pk, compute_seconds=1.5, device="gpu")
    with pytest.raises(quotas.QuotaExceeded):  # 10.5 of 10, refused without waiting for the cache
        quotas.check_compute(organization_id=world.org.pk, device="gpu")
    assert len(reads) == 2
    quotas.forget_cached_limits(world.org.pk)  # an operator changed the limits: read again
    assert quotas.compute_used(world.org.pk)["gpu"] == 10.5
    assert len(reads) == 3


def test_an_organization_without_a_compute_quota_costs_its_predictions_no_round_trip(world, monkeypatch):
    def refused(*_args, **_kwargs):
        raise AssertionError("the counters were read")

    monkeypatch.setattr(quotas, "compute_used", refused)
    usage.record("prediction", organization_id=world.org.pk, compute_seconds=3, device="gpu")
    quotas.check_compute(organization_id=world.org.pk, device="gpu")


def test_the_storage_quota_defaults_to_the_plans_and_the_organizations_own_wins(world, settings):
    settings.DEFAULT_STORAGE_QUOTA_BYTES = 1000
    assert storage.quota_for(world.org) == 1000
    Plan.objects.create(slug="free", name="Free", is_default=True, storage_bytes=500)
    assert storage.quota_for(world.org) == 500
    world.org.storage_quota_bytes = 200
    assert storage.quota_for(world.org) == 200


def test_the_quota_overview_says_how_close_each_limit_is(world):
    _limit(world.org, api_requests_per_minute=4, gpu_seconds_per_month=100)
    client = api_client_for(world.user("member"), organization=world.org)
    client.get("/api/v1/user/")
    usage.record("job", organization_id=world.org.pk, compute_seconds=25, device="gpu")
    rows = {row["quota"]: row for row in quotas.quota_overview(world.org)}
    assert (rows["api_requests_per_minute"]["used"], rows["api_requests_per_minute"]["percent"]) == (1, 25.0)
    assert (rows["gpu_seconds_per_month"]["used"], rows["gpu_seconds_per_month"]["percent"]) == (25.0, 25.0)
    assert rows["cpu_seconds_per_month"]["limit"] is None


def test_operators_changes_to_quotas_are_audited(world):
    operator = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    response = client.post(
        "/admin/analytics/organizationquota/add/",
        {"organization": world.org.pk, "api_requests_per_minute": 50},
    )
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(action="admin.organizationquota.created")
    assert event.organization_id == world.org.pk
    assert event.diff["api_requests_per_minute"] == [None, 50]
    response = client.post("/admin/analytics/plan/add/", {"slug": "pro", "name": "Pro", "predictions_per_minute": 9})
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="admin.plan.created").organization_id is None


def test_predictions_per_minute_count_per_organization_and_per_token(world):
    from types import SimpleNamespace

    from apps.accounts.models import ApiToken

    _limit(world.org, predictions_per_minute=3, token_predictions_per_minute=2)
    api_client_for(world.user("member"), organization=world.org)
    api_client_for(world.user("admin"), organization=world.org)
    first, second = ApiToken.objects.filter(organization=world.org).order_by("pk")

    def as_first():  # a request made with the first token (each request counts once)
        return SimpleNamespace(auth=first)

    def as_second():
        return SimpleNamespace(auth=second)

    quotas.check_prediction(as_first(), organization_id=world.org.pk, device="cpu")
    quotas.check_prediction(as_first(), organization_id=world.org.pk, device="cpu")
    with pytest.raises(quotas.QuotaExceeded, match="this API token may make 2 predictions") as refused:
        quotas.check_prediction(as_first(), organization_id=world.org.pk, device="cpu")
    assert refused.value.quota == "token_predictions_per_minute"
    quotas.check_prediction(as_second(), organization_id=world.org.pk, device="cpu")  # the organization's third
    with pytest.raises(quotas.QuotaExceeded) as refused:
        quotas.check_prediction(as_second(), organization_id=world.org.pk, device="cpu", organization_label="acme")
    assert "the organization acme may make 3 predictions per minute" in str(refused.value.detail)
    assert refused.value.quota == "predictions_per_minute"
    assert 0 < refused.value.wait <= 60
