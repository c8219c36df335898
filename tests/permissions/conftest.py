"""Fixtures of the permission matrix: a fresh scene (world + objects) per test."""

from __future__ import annotations

import pytest

from tests.permissions.matrix import Scene


@pytest.fixture
def scene(world) -> Scene:
    return Scene(world)


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    """Hundreds of matrix requests from one test client IP must not trip the API's rate limits."""
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_CLASSES"] = []
    settings.REST_FRAMEWORK = rest


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Job result files, stored files and upload spools the scenes write stay in the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MARKETPLACE_UPLOAD_DIR = tmp_path / "uploads"


@pytest.fixture(autouse=True)
def _dns_from_the_test(settings):
    """Domain verification reads TXT records from tests/sso_support.py: no DNS server is reachable here."""
    from tests import sso_support

    settings.SSO_DNS_TXT_RESOLVER = "tests.sso_support.txt_records"
    sso_support.TXT_RECORDS.clear()
