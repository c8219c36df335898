"""Fixtures of the organizations tests: a client per persona, a team, and a snapshot of everything they can write."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from apps.audit.models import AuditEvent
from apps.organizations import services
from apps.organizations.models import Invitation, Membership, Organization, Team
from tests.sso_support import idp, saml_acme, scim_acme  # noqa: F401 - fixtures of the SSO tests


@pytest.fixture
def client_as(world, api_client):
    """``client_as("admin")``: an API client with a real Bearer token (admin scope unless told) for a persona."""

    def make(persona: str, **token_kwargs):
        if persona == "anonymous":
            return api_client(None)
        return api_client(world.user(persona), **token_kwargs)

    return make


@pytest.fixture
def team(world):
    """Team ``ml`` of acme with the member in it."""
    made = services.create_team(actor=world.user("owner"), organization=world.org, slug="ml", name="ML")
    services.add_team_member(actor=world.user("owner"), team=made, user=world.user("member"))
    return made


def snapshot() -> dict:
    """Everything the organization services write, to check that a refused request wrote nothing."""
    user_groups = get_user_model().groups.through
    return {
        "organizations": list(
            Organization.objects.order_by("pk").values_list(
                "pk", "slug", "name", "description", "visibility", "require_mfa"
            )
        ),
        "memberships": list(Membership.objects.order_by("pk").values_list("pk", "organization_id", "user_id", "role")),
        "teams": list(Team.objects.order_by("pk").values_list("pk", "slug", "name", "description", "group_id")),
        "team_members": list(user_groups.objects.order_by("pk").values_list("user_id", "group_id")),
        "invitations": list(
            Invitation.objects.order_by("pk").values_list(
                "pk", "email", "role", "key_hash", "expires_at", "accepted_at", "revoked_at"
            )
        ),
        "audit_events": AuditEvent.objects.count(),
        "emails": len(mail.outbox),
    }


def invitation_key_from_email(message=None) -> str:
    """The key in the accept link of an invitation e-mail (the last one sent unless told)."""
    message = message or mail.outbox[-1]
    match = re.search(r"/invitations/([A-Za-z0-9_-]+)/", message.body)
    assert match, message.body
    return match.group(1)


def actions(organization) -> list[str]:
    """The audit actions recorded in an organization's chain, oldest first."""
    return list(AuditEvent.objects.filter(organization=organization).order_by("seq").values_list("action", flat=True))
