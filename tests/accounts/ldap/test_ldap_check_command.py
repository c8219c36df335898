"""``manage.py ldap_check`` tells an operator exactly which step fails, and how to fix it, against a real slapd."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.core.access import Role
from apps.organizations.models import GroupMapping
from tests.factories import OrganizationFactory
from tests.peers import free_port
from tests.peers.ldap import ALICE, BOB, CAROL, FOX, ML_LEADS, PLATFORM_ADMINS, PORTAL_STAFF

pytestmark = pytest.mark.django_db


def run_check(*args: str) -> tuple[bool, str]:
    out = StringIO()
    try:
        call_command("ldap_check", *args, stdout=out)
    except CommandError as exc:
        return False, out.getvalue() + str(exc)
    return True, out.getvalue()


def line(output: str, status: str, step: str) -> str:
    """The first output line with this status and step (fails the test when there is none)."""
    pattern = re.compile(rf"\[{re.escape(status)} *\] {re.escape(step)} {{2,}}")
    found = [text for text in output.splitlines() if pattern.match(text)]
    assert found, f"no “[{status}] {step}” line in:\n{output}"
    return found[0]


def test_a_working_directory_passes_every_step_and_shows_what_the_mappings_give(directory):
    org = OrganizationFactory(slug="acme")
    GroupMapping.objects.create(source="ldap", group=PLATFORM_ADMINS, organization=org, role=Role.ADMIN)
    passed, output = run_check("--user", BOB.email)
    assert passed, output
    assert "FAILED" not in output
    assert "127.0.0.1" in line(output, "ok", "connect")
    assert "cn=portal,ou=services" in line(output, "ok", "bind")
    assert BOB.dn in line(output, "ok", "user")
    assert "platform-admins" in output and "ml-leads" in output  # the nested group and the direct one
    assert "acme: admin" in output
    assert "LDAP check passed." in output


def test_nothing_listening_fails_the_connect_step(use_directory, slapd):
    use_directory(slapd.environment(LDAP_SERVER_URI=f"ldap://127.0.0.1:{free_port()}/"))
    passed, output = run_check()
    assert not passed
    assert "Connection refused" in line(output, "FAILED", "connect")
    assert "fix: check LDAP_SERVER_URI" in output
    assert line(output, "skipped", "bind")


def test_an_untrusted_certificate_fails_the_starttls_step_and_names_the_ca_setting(use_directory, slapd):
    use_directory(slapd.environment(LDAP_START_TLS="true"))
    passed, output = run_check()
    assert not passed
    assert "TLS handshake failed" in line(output, "FAILED", "starttls")
    assert "fix: set LDAP_CA_CERT_FILE" in output


def test_starttls_with_the_right_ca_passes(use_directory, slapd):
    use_directory(slapd.environment(LDAP_START_TLS="true", LDAP_CA_CERT_FILE=slapd.ca_file))
    passed, output = run_check()
    assert passed, output
    assert line(output, "ok", "starttls")


def test_plain_ldap_without_starttls_is_a_warning(directory):
    passed, output = run_check()
    assert passed
    assert "unencrypted" in line(output, "warning", "starttls")


def test_a_wrong_service_password_fails_the_bind_step(use_directory, slapd):
    use_directory(slapd.environment(LDAP_BIND_PASSWORD="not-the-password"))
    passed, output = run_check()
    assert not passed
    assert "invalid credentials" in line(output, "FAILED", "bind")
    assert "fix: check LDAP_BIND_DN and LDAP_BIND_PASSWORD" in output


def test_a_search_base_that_does_not_exist_fails_the_user_search_step(use_directory, slapd):
    use_directory(slapd.environment(LDAP_USER_SEARCH_BASE="ou=staff,dc=gpux,dc=test"))
    passed, output = run_check()
    assert not passed
    assert "ou=staff,dc=gpux,dc=test does not exist" in line(output, "FAILED", "user search")


def test_an_address_nobody_has_fails_the_user_step(directory):
    passed, output = run_check("--user", "nobody@corp.example")
    assert not passed
    assert "no entry under ou=people" in line(output, "FAILED", "user")


def test_a_filter_that_finds_several_people_fails_the_user_step(use_directory, slapd):
    use_directory(slapd.environment(LDAP_USER_SEARCH_FILTER="(|(mail=%(user)s)(objectClass=inetOrgPerson))"))
    passed, output = run_check("--user", ALICE.email)
    assert not passed
    assert "entries match" in line(output, "FAILED", "user")


def test_a_disabled_account_fails_the_user_step(directory):
    passed, output = run_check("--user", CAROL.email)
    assert not passed
    assert "the account is disabled" in line(output, "FAILED", "user")


def test_a_disabled_ad_account_fails_the_user_step(ad_directory):
    passed, output = run_check("--user", FOX.email)
    assert not passed
    assert "userAccountControl" in line(output, "FAILED", "user")


def test_a_wrong_personal_password_fails_the_user_step(directory, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt: "not-her-password")
    passed, output = run_check("--user", ALICE.email, "--ask-password")
    assert not passed
    assert "refused this password" in line(output, "FAILED", "user")
    monkeypatch.setattr("getpass.getpass", lambda prompt: ALICE.password)
    passed, output = run_check("--user", ALICE.email, "--ask-password")
    assert passed, output
    assert "accepted the password" in output


def test_a_group_search_base_that_does_not_exist_fails_the_groups_step(use_directory, slapd):
    use_directory(slapd.environment(LDAP_GROUP_SEARCH_BASE="ou=teams,dc=gpux,dc=test"))
    passed, output = run_check()
    assert not passed
    assert "ou=teams,dc=gpux,dc=test does not exist" in line(output, "FAILED", "groups")


def test_a_staff_group_that_does_not_exist_fails_the_groups_step(use_directory, slapd):
    use_directory(slapd.environment(LDAP_STAFF_GROUP="cn=operators,ou=groups,dc=gpux,dc=test"))
    passed, output = run_check()
    assert not passed
    assert "LDAP_STAFF_GROUP" in line(output, "FAILED", "groups")
    use_directory(slapd.environment(LDAP_STAFF_GROUP=PORTAL_STAFF))
    assert run_check()[0]


def test_a_mapping_to_a_group_that_does_not_exist_fails_the_mapping_step(directory):
    org = OrganizationFactory(slug="acme")
    GroupMapping.objects.create(source="ldap", group=ML_LEADS, organization=org, role=Role.MEMBER)
    GroupMapping.objects.create(
        source="ldap", group="cn=ml-leeds,ou=groups,dc=gpux,dc=test", organization=org, role=Role.ADMIN
    )
    passed, output = run_check()
    assert not passed
    assert "cn=ml-leeds,ou=groups,dc=gpux,dc=test does not exist" in line(output, "FAILED", "mapping")


def test_with_ldap_off_the_configuration_step_fails(settings):
    settings.LDAP_ENABLED = False
    passed, output = run_check()
    assert not passed
    assert "LDAP_SERVER_URI is not set" in line(output, "FAILED", "configuration")
