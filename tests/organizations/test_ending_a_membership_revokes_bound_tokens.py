"""When a membership ends (removed or left), the member's tokens bound to that organization are revoked."""

from __future__ import annotations

import pytest

from apps.accounts.models import ApiToken
from apps.organizations.models import Membership
from apps.organizations.services import leave_organization, remove_member
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def test_removed_member_loses_tokens_bound_to_the_organization_but_keeps_others(world):
    member = world.user("member")
    make_token(member, organization=world.org)
    make_token(member)  # unbound: not about this organization
    remove_member(actor=world.user("admin"), membership=Membership.objects.get(organization=world.org, user=member))
    assert ApiToken.objects.get(user=member, organization=world.org).revoked_at is not None
    assert ApiToken.objects.get(user=member, organization=None).revoked_at is None


def test_leaving_revokes_ones_own_bound_tokens(world, api_client):
    viewer = world.user("viewer")
    raw = make_token(viewer, organization=world.org)
    leave_organization(user=viewer, organization=world.org)
    response = api_client().get("/api/v1/user/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
