"""Fixtures for the page tests: a signed-in browser client per persona, and a clean cache per test."""

from __future__ import annotations

import copy
import uuid

import pytest
from django.test import Client

from tests.sso_support import idp, saml_acme  # noqa: F401 - fixtures of the SSO tests


@pytest.fixture
def fresh_cache(settings):
    """Switch the cache to a new, empty key namespace (without FLUSHDB: the Redis database may hold a Celery
    broker that other tests' workers use). allauth's rate limits, the failed-token throttle and used TOTP codes
    live in the cache."""

    def switch() -> None:
        caches = copy.deepcopy(settings.CACHES)
        caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
        settings.CACHES = caches

    return switch


@pytest.fixture(autouse=True)
def _clean_cache(fresh_cache):
    fresh_cache()


@pytest.fixture
def page_client(world):
    """``page_client("admin")`` -> a Client signed in as that persona of ``world``; "anonymous" -> signed out."""

    def make(persona: str) -> Client:
        client = Client()
        if persona != "anonymous":
            client.force_login(world.user(persona))
        return client

    return make
