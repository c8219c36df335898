"""Account tests share the cache (Redis in tests) with allauth's rate limits and the failed-token throttle:
every test starts from an empty one so that one test's attempts never count against another's."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.sso_support import idp, saml_acme  # noqa: F401 - fixtures of the SSO tests


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()
