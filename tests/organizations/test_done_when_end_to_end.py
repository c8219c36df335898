"""The issue's "done when", through the API with real Bearer tokens: a user creates an organization, invites a
colleague who accepts with their verified e-mail, makes a team with them in it, and an outsider's token gets
404 on all of it."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from apps.accounts.models import TokenScope
from apps.audit.models import AuditEvent
from apps.organizations.models import Membership, Organization
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def key_from_last_email() -> str:
    match = re.search(r"/invitations/([^/\s]+)/", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def test_a_user_creates_an_organization_invites_a_colleague_makes_a_team_and_an_outsider_sees_none_of_it(api_client):
    founder = UserFactory(handle="founder", email="founder@example.com")
    colleague = UserFactory(handle="colleague", email="colleague@example.com")
    outsider = UserFactory(handle="stranger", email="stranger@example.com")
    founder_api = api_client(founder, scope=TokenScope.ADMIN)
    colleague_api = api_client(colleague, scope=TokenScope.ADMIN)
    outsider_api = api_client(outsider, scope=TokenScope.ADMIN)

    created = founder_api.post("/api/v1/orgs/", {"slug": "deep-vision", "name": "Deep Vision"})
    assert created.status_code == 201, created.data
    assert created.data["role"] == "owner"
    assert created.data["visibility"] == "private"

    invited = founder_api.post("/api/v1/orgs/deep-vision/invitations/", {"email": "Colleague@Example.com"})
    assert invited.status_code == 201, invited.data
    assert invited.data["email"] == "colleague@example.com"
    assert invited.data["status"] == "pending"
    assert "key" not in invited.data and "key_hash" not in invited.data
    assert mail.outbox[-1].to == ["colleague@example.com"]

    accepted = colleague_api.post("/api/v1/invitations/accept/", {"key": key_from_last_email()})
    assert accepted.status_code == 201, accepted.data
    assert accepted.data == {"organization": "deep-vision", "name": "Deep Vision", "role": "member"}

    team = founder_api.post("/api/v1/orgs/deep-vision/teams/", {"slug": "research", "name": "Research"})
    assert team.status_code == 201, team.data
    added = founder_api.post("/api/v1/orgs/deep-vision/teams/research/members/", {"handle": "colleague"})
    assert added.status_code == 201, added.data

    members = founder_api.get("/api/v1/orgs/deep-vision/members/")
    assert {(m["handle"], m["role"]) for m in members.data["results"]} == {
        ("founder", "owner"),
        ("colleague", "member"),
    }
    team_members = colleague_api.get("/api/v1/orgs/deep-vision/teams/research/members/")
    assert [m["handle"] for m in team_members.data["results"]] == ["colleague"]
    invitation_uuid = invited.data["uuid"]

    for url in [
        "/api/v1/orgs/deep-vision/",
        "/api/v1/orgs/deep-vision/members/",
        "/api/v1/orgs/deep-vision/members/founder/",
        "/api/v1/orgs/deep-vision/teams/",
        "/api/v1/orgs/deep-vision/teams/research/",
        "/api/v1/orgs/deep-vision/teams/research/members/",
        "/api/v1/orgs/deep-vision/invitations/",
        f"/api/v1/orgs/deep-vision/invitations/{invitation_uuid}/",
    ]:
        answer = outsider_api.get(url)
        assert answer.status_code == 404, (url, answer.status_code, answer.data)
    assert "deep-vision" not in [o["slug"] for o in outsider_api.get("/api/v1/orgs/").data["results"]]

    organization = Organization.objects.get(slug="deep-vision")
    assert Membership.objects.filter(organization=organization).count() == 2
    recorded = list(
        AuditEvent.objects.filter(organization=organization).order_by("seq").values_list("action", flat=True)
    )
    assert recorded == [
        "organization.created",
        "invitation.created",
        "invitation.accepted",
        "member.added",
        "team.created",
        "team.member_added",
    ]
