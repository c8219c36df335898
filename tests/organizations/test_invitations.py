"""Invitations by e-mail: sent by admins with a role up to their own, accepted only by the invited address,
verified, before expiry, once; every refusal has its own code and writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.utils import timezone

from apps.accounts.models import TokenScope
from apps.core.access import Role
from apps.organizations import services
from apps.organizations.models import Invitation, Membership, hash_invitation_key
from tests.conftest import api_client_for
from tests.factories import UserFactory
from tests.organizations.conftest import actions, invitation_key_from_email, snapshot

pytestmark = pytest.mark.django_db

INVITATIONS = "/api/v1/orgs/acme/invitations/"
ACCEPT = "/api/v1/invitations/accept/"


def invite(world, email="new@example.com", role="member", persona="admin"):
    return services.create_invitation(actor=world.user(persona), organization=world.org, email=email, role=role)


def test_an_admin_invites_and_the_email_carries_the_accept_link(world, client_as, settings):
    settings.PORTAL_URL = "https://portal.example"
    answer = client_as("admin").post(INVITATIONS, {"email": "  New.Person@Example.COM ", "role": "viewer"})
    assert answer.status_code == 201, answer.data
    assert answer.data["email"] == "new.person@example.com"
    assert answer.data["role"] == "viewer"
    assert answer.data["invited_by"] == "admin-user"
    assert set(answer.data) >= {"uuid", "status", "expires_at"}
    assert not {"key", "key_hash"} & set(answer.data)
    message = mail.outbox[-1]
    assert message.to == ["new.person@example.com"]
    assert "Acme" in message.subject
    key = invitation_key_from_email(message)
    assert f"https://portal.example/invitations/{key}/" in message.body
    assert f"https://portal.example/invitations/{key}/" in message.alternatives[0][0]
    invitation = Invitation.objects.get(uuid=answer.data["uuid"])
    assert invitation.key_hash == hash_invitation_key(key)
    assert key not in invitation.key_hash


def test_the_invitation_expires_after_the_configured_days(world, settings):
    settings.INVITATION_TTL_DAYS = 3
    invitation = invite(world)
    assert timedelta(days=3) - timedelta(minutes=1) < invitation.expires_at - timezone.now() <= timedelta(days=3)


def test_the_invited_user_accepts_with_their_verified_email(world):
    invitation = invite(world, email="New@Example.com", role="admin")
    newcomer = UserFactory(email="new@example.com")
    answer = api_client_for(newcomer).post(ACCEPT, {"key": invitation.key})
    assert answer.status_code == 201, answer.data
    assert answer.data == {"organization": "acme", "name": "Acme", "role": "admin"}
    assert Role(Membership.objects.get(organization=world.org, user=newcomer).role) == Role.ADMIN
    invitation.refresh_from_db()
    assert invitation.status == "accepted"
    assert invitation.accepted_by == newcomer
    assert actions(world.org)[-2:] == ["invitation.accepted", "member.added"]


def test_a_secondary_verified_address_may_accept(world):
    invitation = invite(world, email="work@example.com")
    newcomer = UserFactory(email="home@example.com")
    EmailAddress.objects.create(user=newcomer, email="Work@Example.com", verified=True, primary=False)
    assert api_client_for(newcomer).post(ACCEPT, {"key": invitation.key}).status_code == 201


def refused(user, key, field, code):
    before = snapshot()
    answer = api_client_for(user).post(ACCEPT, {"key": key})
    assert answer.status_code == 400, answer.data
    assert answer.data["codes"] == {field: [code]}, answer.data
    assert snapshot() == before
    return answer


def test_an_unknown_key_is_refused(world):
    invite(world)
    refused(UserFactory(email="new@example.com"), "not-a-real-key", "key", "unknown_key")


def test_an_expired_invitation_is_refused(world):
    invitation = invite(world)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = refused(UserFactory(email="new@example.com"), invitation.key, "key", "expired")
    assert "expired" in answer.data["key"][0]


def test_a_used_invitation_cannot_be_used_again(world):
    invitation = invite(world)
    newcomer = UserFactory(email="new@example.com")
    assert api_client_for(newcomer).post(ACCEPT, {"key": invitation.key}).status_code == 201
    refused(newcomer, invitation.key, "key", "already_used")
    refused(UserFactory(email="other@example.com"), invitation.key, "key", "already_used")


def test_a_revoked_invitation_is_refused(world, client_as):
    invitation = invite(world)
    assert client_as("admin").delete(f"{INVITATIONS}{invitation.uuid}/").status_code == 204
    refused(UserFactory(email="new@example.com"), invitation.key, "key", "revoked")


def test_someone_with_another_email_cannot_accept(world):
    invitation = invite(world)
    answer = refused(UserFactory(email="intruder@example.com"), invitation.key, "email", "email_mismatch")
    assert "another e-mail address" in answer.data["email"][0]


def test_an_unverified_copy_of_the_invited_email_cannot_accept(world):
    invitation = invite(world)
    answer = refused(UserFactory(email="new@example.com", verified=False), invitation.key, "email", "email_unverified")
    assert "Verify" in answer.data["email"][0]


def test_a_user_who_is_already_a_member_gets_a_clear_error(world):
    invitation = invite(world, email="second@example.com")
    viewer = world.user("viewer")
    EmailAddress.objects.create(user=viewer, email="second@example.com", verified=True)
    answer = refused(viewer, invitation.key, "key", "already_member")
    assert "already a member" in answer.data["key"][0]


def test_inviting_a_members_address_is_refused(world, client_as):
    before = snapshot()
    answer = client_as("admin").post(INVITATIONS, {"email": "MEMBER@acme.example"})
    assert answer.status_code == 400
    assert answer.data["codes"] == {"email": ["already_member"]}
    assert snapshot() == before


def test_personal_organizations_take_no_invitations(world, client_as):
    before = snapshot()
    answer = client_as("owner").post(
        f"/api/v1/orgs/{world.user('owner').handle}/invitations/", {"email": "a@b.example"}
    )
    assert answer.status_code == 400
    assert answer.data["codes"] == {"organization": ["personal_organization"]}
    assert snapshot() == before


def test_an_admin_cannot_invite_an_owner_but_an_owner_can(world, client_as):
    before = snapshot()
    answer = client_as("admin").post(INVITATIONS, {"email": "boss@example.com", "role": "owner"})
    assert answer.status_code == 403
    assert "above your own" in answer.data["detail"]
    assert snapshot() == before
    assert client_as("owner").post(INVITATIONS, {"email": "boss@example.com", "role": "owner"}).status_code == 201


@pytest.mark.parametrize("persona", ["member", "viewer"])
def test_members_and_viewers_cannot_invite(world, client_as, persona):
    before = snapshot()
    assert client_as(persona).post(INVITATIONS, {"email": "x@example.com"}).status_code == 403
    assert snapshot() == before


def test_inviting_needs_an_admin_token(world, client_as):
    answer = client_as("owner", scope=TokenScope.RUN).post(INVITATIONS, {"email": "x@example.com"})
    assert answer.status_code == 403
    assert not Invitation.objects.exists()


def test_reinviting_an_open_invitation_refreshes_it_and_the_old_link_stops_working(world, client_as):
    first = client_as("admin").post(INVITATIONS, {"email": "new@example.com", "role": "viewer"})
    old_key = invitation_key_from_email()
    again = client_as("admin").post(INVITATIONS, {"email": "NEW@example.com", "role": "member"})
    assert again.status_code == 201
    assert again.data["uuid"] == first.data["uuid"]
    assert again.data["role"] == "member"
    assert Invitation.objects.count() == 1
    assert len(mail.outbox) == 2
    new_key = invitation_key_from_email()
    newcomer = UserFactory(email="new@example.com")
    refused(newcomer, old_key, "key", "unknown_key")
    assert api_client_for(newcomer).post(ACCEPT, {"key": new_key}).data["role"] == "member"
    assert "invitation.refreshed" in actions(world.org)


def test_reinviting_an_expired_invitation_renews_it(world):
    invitation = invite(world)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(days=1))
    renewed = invite(world)
    assert renewed.pk == invitation.pk
    assert renewed.status == "pending"


def test_an_address_may_be_invited_again_after_a_revoked_invitation(world, client_as):
    invitation = invite(world)
    services.revoke_invitation(actor=world.user("admin"), invitation=invitation)
    again = invite(world)
    assert again.pk != invitation.pk
    assert Invitation.objects.filter(email="new@example.com").count() == 2


def test_an_admin_cannot_renew_or_revoke_an_owners_invitation(world, client_as):
    invitation = invite(world, email="boss@example.com", role="owner", persona="owner")
    before = snapshot()
    assert client_as("admin").post(INVITATIONS, {"email": "boss@example.com", "role": "member"}).status_code == 403
    assert client_as("admin").delete(f"{INVITATIONS}{invitation.uuid}/").status_code == 403
    assert snapshot() == before


def test_revoking_twice_or_after_acceptance_is_refused(world, client_as):
    invitation = invite(world)
    url = f"{INVITATIONS}{invitation.uuid}/"
    assert client_as("admin").delete(url).status_code == 204
    again = client_as("admin").delete(url)
    assert again.status_code == 400
    assert again.data["codes"] == {"invitation": ["already_revoked"]}
    accepted = invite(world, email="second@example.com")
    api_client_for(UserFactory(email="second@example.com")).post(ACCEPT, {"key": accepted.key})
    late = client_as("admin").delete(f"{INVITATIONS}{accepted.uuid}/")
    assert late.status_code == 400
    assert late.data["codes"] == {"invitation": ["already_accepted"]}


def test_admins_list_and_filter_invitations_and_the_rest_of_the_organization_gets_403(world, client_as):
    invite(world, email="a@example.com")
    revoked = invite(world, email="b@example.com", role="viewer")
    services.revoke_invitation(actor=world.user("admin"), invitation=revoked)
    admin = client_as("admin")
    assert admin.get(INVITATIONS).data["count"] == 2
    assert [i["email"] for i in admin.get(INVITATIONS, {"status": "pending"}).data["results"]] == ["a@example.com"]
    assert [i["email"] for i in admin.get(INVITATIONS, {"status": "revoked"}).data["results"]] == ["b@example.com"]
    assert [i["email"] for i in admin.get(INVITATIONS, {"role": "viewer"}).data["results"]] == ["b@example.com"]
    assert [i["email"] for i in admin.get(INVITATIONS, {"search": "a@ex"}).data["results"]] == ["a@example.com"]
    for persona in ("member", "viewer"):
        assert client_as(persona).get(INVITATIONS).status_code == 403
        assert client_as(persona).get(f"{INVITATIONS}{revoked.uuid}/").status_code == 403
    assert client_as("outsider").get(INVITATIONS).status_code == 404


def test_a_public_organizations_invitations_stay_with_its_admins(world, client_as):
    world.org.visibility = "public"
    world.org.save()
    invite(world)
    assert client_as("outsider").get(INVITATIONS).status_code == 403
    assert client_as("anonymous").get(INVITATIONS).status_code in (401, 403)
    assert client_as("admin").get(INVITATIONS).data["count"] == 1


def test_accepting_needs_sign_in_and_an_unbound_admin_token(world):
    invitation = invite(world)
    newcomer = UserFactory(email="new@example.com")
    before = snapshot()
    assert api_client_for(None).post(ACCEPT, {"key": invitation.key}).status_code in (401, 403)
    assert api_client_for(newcomer, scope=TokenScope.WRITE).post(ACCEPT, {"key": invitation.key}).status_code == 403
    personal = newcomer.personal_organization
    bound = api_client_for(newcomer, organization=personal).post(ACCEPT, {"key": invitation.key})
    assert bound.status_code == 403
    assert bound.data["code"] == "token_binding"
    assert snapshot() == before


def test_the_accept_page_lookup_finds_the_invitation_by_its_key(world):
    invitation = invite(world)
    assert services.invitation_for_key(invitation.key) == invitation
    assert services.invitation_for_key("nope") is None
    assert services.invitation_for_key("") is None


def test_an_invitation_whose_email_cannot_be_sent_is_not_kept(world, client_as, settings):
    # A real SMTP backend aimed at a closed local port: the connection is refused.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    before = snapshot()
    answer = client_as("admin").post(INVITATIONS, {"email": "new@example.com"})
    assert answer.status_code == 400
    assert answer.data["codes"] == {"email": ["email_not_sent"]}
    assert snapshot() == before
