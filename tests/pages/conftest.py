"""Fixtures for the page tests: a signed-in browser client per persona, and a clean cache per test."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client


@pytest.fixture(autouse=True)
def _clean_cache():
    """allauth's rate limits, axes' and the token throttle's counters and used TOTP codes live in the cache."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def page_client(world):
    """``page_client("admin")`` -> a Client signed in as that persona of ``world``; "anonymous" -> signed out."""

    def make(persona: str) -> Client:
        client = Client()
        if persona != "anonymous":
            client.force_login(world.user(persona))
        return client

    return make
