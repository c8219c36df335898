"""The cache (django-redis through django-prometheus' backend) counts its hits and misses on /metrics."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from tests.metrics_support import scrape_web

pytestmark = pytest.mark.django_db


def test_cache_hits_and_misses_are_counted():
    if not settings.REDIS_URL:
        pytest.skip("the cache is Redis when REDIS_URL is set, as in CI")
    before = scrape_web(Client())
    cache.set("gpux:test:metrics-cache", 0)
    assert cache.get("gpux:test:metrics-cache") == 0  # a stored zero is a hit, not a miss
    assert cache.get("gpux:test:metrics-cache-missing") is None
    after = scrape_web(Client())
    for name in ("django_cache_get_hits_total", "django_cache_get_misses_total"):
        assert after.value(name, backend="redis") - before.value(name, backend="redis") >= 1, name
