"""The per-minute quota holds exactly at its boundary across web processes: two gunicorn servers (one process each)
on the test database and the test run's Redis, hit at the same time, let exactly the limit through between them;
every other request answers 429 with Retry-After."""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings

from apps.analytics import quotas, usage
from apps.analytics.models import OrganizationQuota
from tests import jobs_support
from tests.factories import OrganizationFactory, UserFactory, make_token

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
LIMIT = 25


def _get(url: str, token: str) -> tuple[int, str | None]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After")


def test_two_web_processes_let_exactly_the_limit_through(tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("rate limits are shared through Redis")
    for key in usage.client().scan_iter(f"{quotas.RATE_PREFIX}*"):
        usage.client().delete(key)
    org = OrganizationFactory()
    OrganizationQuota.objects.create(organization=org, api_requests_per_minute=LIMIT)
    token = make_token(UserFactory(), organization=org)
    servers = [jobs_support.serve_portal(tmp_path / name) for name in ("a", "b")]
    try:
        for _, url in servers:
            jobs_support.wait_for_portal(url)
        urls = [f"{servers[i % 2][1]}/api/v1/user/" for i in range(2 * LIMIT + 10)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda url: _get(url, token), urls))
        statuses = [code for code, _ in answers]
        assert statuses.count(200) == LIMIT, statuses
        assert statuses.count(429) == len(urls) - LIMIT, statuses
        assert all(retry and 1 <= int(retry) <= 60 for code, retry in answers if code == 429)
        # Both processes answered some of each: the count is shared, not per process.
        by_server = {
            url: [code for u, (code, _) in zip(urls, answers, strict=True) if u.startswith(url)] for _, url in servers
        }
        assert all(200 in codes or 429 in codes for codes in by_server.values())
    finally:
        for server, _ in servers:
            jobs_support.stop_portal(server)
