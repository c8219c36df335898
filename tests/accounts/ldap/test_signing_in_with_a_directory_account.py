"""Directory people sign in through the normal sign-in form; the portal finds, links or creates their account."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress

from apps.accounts.models import ExternalIdentity, User
from apps.audit.models import AuditEvent
from apps.organizations.models import Organization
from tests.accounts.ldap.conftest import sign_in, signed_in_user_id
from tests.factories import PASSWORD, UserFactory
from tests.peers.ldap import ALICE, BOB

pytestmark = pytest.mark.django_db


def test_a_directory_person_signs_in_with_their_email_and_directory_password_and_gets_an_account(directory):
    client, response = sign_in(ALICE)

    assert response.status_code == 302
    user = User.objects.get(email=ALICE.email)
    assert signed_in_user_id(client) == str(user.pk)
    assert user.handle == "alice"  # from the uid attribute
    assert user.name == ALICE.name
    assert not user.has_usable_password()  # they sign in through the directory
    assert EmailAddress.objects.get(user=user).verified  # the directory vouches for its addresses
    assert Organization.objects.get(personal_owner=user).slug == "alice"
    identity = ExternalIdentity.objects.get(user=user)
    assert identity.source == "ldap"
    assert identity.attributes["dn"] == ALICE.dn.lower()
    assert AuditEvent.objects.filter(action="user.provisioned", target_id=str(user.uuid)).exists()


def test_the_same_person_signing_in_again_gets_the_same_account(directory):
    sign_in(ALICE)
    first = User.objects.get(email=ALICE.email)
    client, response = sign_in(ALICE)

    assert response.status_code == 302
    assert signed_in_user_id(client) == str(first.pk)
    assert User.objects.filter(email=ALICE.email).count() == 1
    assert ExternalIdentity.objects.filter(user=first).count() == 1


def test_the_identity_is_the_entry_uuid_so_it_survives_a_renamed_entry(directory):
    sign_in(ALICE)
    identity = ExternalIdentity.objects.get(user__email=ALICE.email)
    entry = directory.connect().search_s(ALICE.dn, 0, "(objectClass=*)", ["entryUUID"])
    assert identity.subject == entry[0][1]["entryUUID"][0].decode()


def test_a_taken_handle_gets_a_suffix(directory):
    UserFactory(handle="alice", email="another-alice@example.com")
    sign_in(ALICE)
    assert User.objects.get(email=ALICE.email).handle == "alice-2"


def test_an_existing_portal_account_with_the_same_address_is_linked_and_keeps_its_password(directory):
    local = UserFactory(email=BOB.email, handle="bobby")
    client, response = sign_in(BOB)

    assert response.status_code == 302
    assert signed_in_user_id(client) == str(local.pk)
    assert ExternalIdentity.objects.get(user=local).source == "ldap"
    assert AuditEvent.objects.filter(action="identity.linked", target_id=str(local.uuid)).exists()
    # The portal password still works too: the local backend is tried first.
    client, response = sign_in(BOB.email, PASSWORD)
    assert signed_in_user_id(client) == str(local.pk)


def test_a_wrong_directory_password_is_refused_with_the_usual_form_error(directory):
    client, response = sign_in(ALICE, "not-her-password")

    assert response.status_code == 200
    assert response.context["form"].errors
    assert "directory" not in str(response.context["form"].errors).lower()
    assert signed_in_user_id(client) is None
    assert not User.objects.filter(email=ALICE.email).exists()


def test_someone_the_directory_does_not_know_is_refused(directory):
    client, response = sign_in("nobody@corp.example", "whatever-password")
    assert response.status_code == 200
    assert signed_in_user_id(client) is None


def test_local_accounts_still_sign_in_with_the_directory_configured(directory):
    local = UserFactory(email="local@example.com")
    client, response = sign_in("local@example.com", PASSWORD)
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(local.pk)


def test_an_account_an_operator_deactivated_stays_deactivated_whatever_the_directory_says(directory):
    sign_in(ALICE)
    User.objects.filter(email=ALICE.email).update(is_active=False)  # an operator deactivated them
    client, _ = sign_in(ALICE)
    assert signed_in_user_id(client) is None
    assert not User.objects.get(email=ALICE.email).is_active  # only accounts the directory disabled come back
