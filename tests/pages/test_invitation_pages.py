"""Inviting from the page, and the accept page: it shows the organization and role; accepting needs sign-in and
the invited address, verified."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse

from apps.organizations.models import Invitation, Membership
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def invite(page_client, email="new@acme.example", role=20) -> str:
    response = page_client("admin").post(reverse("org-invitations", args=["acme"]), {"email": email, "role": role})
    assert response.status_code == 302
    link = re.search(r"/invitations/[^/\s]+/", mail.outbox[-1].body).group(0)
    return link


def test_admin_invites_and_the_email_carries_the_accept_link(world, page_client):
    link = invite(page_client)
    assert Invitation.objects.get(email="new@acme.example").status == "pending"
    page = page_client("admin").get(reverse("org-invitations", args=["acme"]))
    assert "new@acme.example" in page.content.decode()
    assert link.startswith("/invitations/")


def test_invited_person_sees_the_organization_and_role_and_accepts(world, page_client, client):
    link = invite(page_client)
    newcomer = UserFactory(email="new@acme.example", handle="newcomer")
    client.force_login(newcomer)
    page = client.get(link)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Acme" in body and "member" in body and "Accept invitation" in body
    response = client.post(link)
    assert response.status_code == 302 and response["Location"] == reverse("org-overview", args=["acme"])
    assert Membership.objects.filter(organization=world.org, user=newcomer).exists()
    used = client.post(link)
    assert used.status_code == 400
    assert "already been used" in used.content.decode()


def test_someone_else_cannot_accept_and_is_told_why(world, page_client):
    link = invite(page_client)
    response = page_client("outsider").post(link)
    assert response.status_code == 400
    assert "alert-danger" in response.content.decode()
    assert not Membership.objects.filter(organization=world.org, user=world.user("outsider")).exists()


def test_opened_signed_out_the_link_says_what_it_is_and_keeps_it_through_sign_in(world, page_client, client):
    link = invite(page_client)
    page = client.get(link)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Acme" in body and "new@acme.example" in body and "member" in body
    assert f"/accounts/login/?next={link}" in body
    assert f"/accounts/signup/?next={link}" in body
    # Accepting still needs sign-in.
    response = client.post(link)
    assert response.status_code == 302 and response["Location"].startswith(reverse(settings.LOGIN_URL))
    # Signing in later in this session (after verifying a new address, with no next) comes back to the link.
    UserFactory(email="new@acme.example", handle="newcomer")
    signed_in = client.post(reverse("account_login"), {"login": "new@acme.example", "password": PASSWORD})
    assert signed_in.status_code == 302 and signed_in["Location"] == link


def test_an_unknown_key_is_404(world, page_client):
    response = page_client("outsider").get(reverse("invitation-accept", args=["not-a-real-key"]))
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_admin_revokes_an_invitation(world, page_client):
    invite(page_client)
    invitation = Invitation.objects.get(email="new@acme.example")
    assert (
        page_client("member").post(reverse("org-invitation-revoke", args=["acme", invitation.uuid])).status_code == 403
    )
    response = page_client("admin").post(reverse("org-invitation-revoke", args=["acme", invitation.uuid]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
