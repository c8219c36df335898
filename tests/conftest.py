"""Shared fixtures: the six personas of DESIGN.md around one organization, and API clients for them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from apps.core.access import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_token

PERSONAS = ("owner", "admin", "member", "viewer", "outsider", "anonymous")
ROLE_OF_PERSONA = {"owner": Role.OWNER, "admin": Role.ADMIN, "member": Role.MEMBER, "viewer": Role.VIEWER}


@dataclass
class World:
    """One organization (``acme``) with a user in each role, plus an outsider who belongs elsewhere."""

    org: object
    users: dict

    def user(self, persona: str):
        return self.users.get(persona)


@pytest.fixture
def world(db) -> World:
    org = OrganizationFactory(slug="acme", name="Acme")
    users = {}
    for persona, role in ROLE_OF_PERSONA.items():
        user = UserFactory(handle=f"{persona}-user", email=f"{persona}@acme.example")
        MembershipFactory(organization=org, user=user, role=role)
        users[persona] = user
    users["outsider"] = UserFactory(handle="outsider-user", email="outsider@elsewhere.example")
    return World(org=org, users=users)


def api_client_for(user=None, **token_kwargs) -> APIClient:
    """An API client that authenticates as a real client does: with a Bearer token (admin scope by default)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, **token_kwargs)}")
    return client


@pytest.fixture
def api_client():
    return api_client_for


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_usage_stream():
    """Each test starts with an empty usage stream (tests/usage_support.py)."""
    from tests.usage_support import clear_usage_stream

    clear_usage_stream()


@pytest.fixture(autouse=True)
def _fresh_short_lived_caches():
    """Each test starts with no remembered token or access decision (apps/core/shortlived.py): ids repeat between
    tests whose rows were rolled back."""
    from apps.core import shortlived
    from apps.core.api.throttling import forget_leases

    shortlived.clear_local()
    forget_leases()  # rate-limit permits leased by this process (apps/core/api/throttling.py): ids repeat too
