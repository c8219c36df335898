"""What people see when the directory is down, refuses someone, or needs StartTLS; local accounts keep working."""

from __future__ import annotations

import pytest

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.accounts.ldap.conftest import sign_in, signed_in_user_id
from tests.factories import PASSWORD, UserFactory
from tests.peers import free_port
from tests.peers.ldap import ALICE, CAROL

pytestmark = pytest.mark.django_db


def test_an_account_locked_by_a_directory_administrator_is_refused(directory):
    # ppolicy: slapd itself refuses Carol's password, and the portal's filter sees pwdAccountLockedTime.
    client, response = sign_in(CAROL)
    assert response.status_code == 200
    assert signed_in_user_id(client) is None


def test_a_locked_account_that_had_signed_in_before_is_deactivated_in_the_portal(use_directory, slapd):
    use_directory(slapd.environment(LDAP_DISABLED_FILTER="none", LDAP_USER_SEARCH_FILTER="(mail=%(user)s)"))
    # Carol's portal account was linked to her entry before the lock (as if she had signed in then).
    from apps.accounts.ldap import subject_of  # noqa: F401  (the same identity the backend computes)
    from apps.accounts.models import ExternalIdentity

    carol = UserFactory(email=CAROL.email, handle="carol")
    entry = slapd.connect().search_s(CAROL.dn, 0, "(objectClass=*)", ["entryUUID"])
    ExternalIdentity.objects.create(user=carol, source="ldap", subject=entry[0][1]["entryUUID"][0].decode())

    use_directory(slapd.environment())
    sign_in(CAROL)

    carol.refresh_from_db()
    assert not carol.is_active
    assert (
        AuditEvent.objects.filter(action="user.deactivated", target_id=str(carol.uuid)).get().metadata["reason"]
        == "disabled in the directory"
    )


def test_a_directory_that_is_down_is_said_so_and_local_accounts_still_sign_in(use_directory, slapd):
    down = f"ldap://127.0.0.1:{free_port()}/"  # nothing listens there
    use_directory(slapd.environment(LDAP_SERVER_URI=down, LDAP_TIMEOUT="2"))

    client, response = sign_in(ALICE)
    assert response.status_code == 200
    assert signed_in_user_id(client) is None
    errors = " ".join(response.context["form"].non_field_errors())
    assert "directory (LDAP) server cannot be reached" in errors
    assert "Accounts with a portal password still can" in errors

    local = UserFactory(email="local@example.com")
    client, response = sign_in("local@example.com", PASSWORD)
    assert signed_in_user_id(client) == str(local.pk)


def test_a_service_account_the_directory_refuses_is_said_so_without_naming_the_password(use_directory, slapd):
    use_directory(slapd.environment(LDAP_BIND_PASSWORD="wrong-service-password"))
    client, response = sign_in(ALICE)
    assert signed_in_user_id(client) is None
    errors = " ".join(response.context["form"].non_field_errors())
    assert "Directory (LDAP) sign-in is not working right now" in errors
    assert "ldap_check" in errors


def test_signing_in_over_starttls_with_the_directory_ca(use_directory, slapd):
    use_directory(slapd.environment(LDAP_START_TLS="true", LDAP_CA_CERT_FILE=slapd.ca_file))
    client, _ = sign_in(ALICE)
    assert signed_in_user_id(client) == str(User.objects.get(email=ALICE.email).pk)


def test_starttls_against_a_certificate_the_portal_does_not_trust_refuses_directory_sign_in(use_directory, slapd):
    use_directory(slapd.environment(LDAP_START_TLS="true"))  # no LDAP_CA_CERT_FILE: the system CAs do not know it
    client, response = sign_in(ALICE)
    assert signed_in_user_id(client) is None
    assert "not working right now" in " ".join(response.context["form"].non_field_errors())
