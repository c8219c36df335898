"""LDAP_* variables become django-auth-ldap's settings (apps.accounts.ldap_config); mistakes name the variable."""

from __future__ import annotations

import ldap
import pytest
from django.core.exceptions import ImproperlyConfigured
from django_auth_ldap.config import NestedActiveDirectoryGroupType, NestedGroupOfNamesType

from apps.accounts.ldap_config import AD_DISABLED_FILTER, OPENLDAP_DISABLED_FILTER, ldap_settings

BASE = {
    "LDAP_SERVER_URI": "ldap://dc1.corp.example",
    "LDAP_USER_SEARCH_BASE": "ou=people,dc=corp,dc=example",
    "LDAP_GROUP_SEARCH_BASE": "ou=groups,dc=corp,dc=example",
}


def test_the_openldap_preset_is_the_default():
    values = ldap_settings(BASE)
    assert values["LDAP_PRESET"] == "openldap"
    assert values["AUTH_LDAP_USER_SEARCH"].filterstr == "(&(objectClass=inetOrgPerson)(mail=%(user)s))"
    assert isinstance(values["AUTH_LDAP_GROUP_TYPE"], NestedGroupOfNamesType)
    assert values["LDAP_DISABLED_FILTER"] == OPENLDAP_DISABLED_FILTER
    assert values["AUTH_LDAP_USER_SEARCH"].attrlist == ["*", "entryUUID"]


def test_the_active_directory_preset_reads_ad_attributes_and_nested_groups():
    values = ldap_settings({**BASE, "LDAP_PRESET": "active-directory"})
    assert "userPrincipalName=%(user)s" in values["AUTH_LDAP_USER_SEARCH"].filterstr
    assert isinstance(values["AUTH_LDAP_GROUP_TYPE"], NestedActiveDirectoryGroupType)
    assert values["LDAP_HANDLE_ATTRIBUTE"] == "sAMAccountName"
    assert values["LDAP_DISABLED_FILTER"] == AD_DISABLED_FILTER
    assert values["AUTH_LDAP_CONNECTION_OPTIONS"][ldap.OPT_REFERRALS] == 0


def test_a_variable_overrides_its_preset_and_none_turns_the_disabled_check_off():
    values = ldap_settings({**BASE, "LDAP_USER_SEARCH_FILTER": "(uid=%(user)s)", "LDAP_DISABLED_FILTER": "none"})
    assert values["AUTH_LDAP_USER_SEARCH"].filterstr == "(uid=%(user)s)"
    assert values["LDAP_DISABLED_FILTER"] == ""


def test_tls_options_come_before_the_new_tls_context_that_applies_them(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    values = ldap_settings({**BASE, "LDAP_START_TLS": "yes", "LDAP_CA_CERT_FILE": str(ca), "LDAP_TIMEOUT": "2.5"})
    options = values["AUTH_LDAP_CONNECTION_OPTIONS"]
    assert values["AUTH_LDAP_START_TLS"] is True
    assert options[ldap.OPT_X_TLS_CACERTFILE] == str(ca)
    assert options[ldap.OPT_NETWORK_TIMEOUT] == 2.5
    assert list(options)[-1] == ldap.OPT_X_TLS_NEWCTX


def test_the_bind_password_may_come_from_a_file(tmp_path):
    secret = tmp_path / "bind-password"
    secret.write_text("s3cret\n")
    assert ldap_settings({**BASE, "LDAP_BIND_PASSWORD_FILE": str(secret)})["AUTH_LDAP_BIND_PASSWORD"] == "s3cret"


def test_without_a_group_base_there_are_no_groups():
    values = ldap_settings({k: v for k, v in BASE.items() if k != "LDAP_GROUP_SEARCH_BASE"})
    assert values["AUTH_LDAP_GROUP_SEARCH"] is None


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"LDAP_PRESET": "novell"}, "LDAP_PRESET"),
        ({"LDAP_USER_SEARCH_BASE": ""}, "LDAP_USER_SEARCH_BASE"),
        ({"LDAP_USER_SEARCH_FILTER": "mail=%(user)s"}, "LDAP_USER_SEARCH_FILTER"),
        ({"LDAP_GROUP_TYPE": "flat"}, "LDAP_GROUP_TYPE"),
        ({"LDAP_START_TLS": "maybe"}, "LDAP_START_TLS"),
        ({"LDAP_TIMEOUT": "soon"}, "LDAP_TIMEOUT"),
        ({"LDAP_TIMEOUT": "0"}, "LDAP_TIMEOUT"),
        ({"LDAP_TLS_REQUIRE_CERT": "sometimes"}, "LDAP_TLS_REQUIRE_CERT"),
        ({"LDAP_CA_CERT_FILE": "/nonexistent/ca.pem"}, "LDAP_CA_CERT_FILE"),
        ({"LDAP_BIND_PASSWORD_FILE": "/nonexistent/secret"}, "LDAP_BIND_PASSWORD_FILE"),
        ({"LDAP_DISABLED_FILTER": "userAccountControl=514"}, "LDAP_DISABLED_FILTER"),
        ({"LDAP_GROUP_SEARCH_BASE": "", "LDAP_STAFF_GROUP": "cn=ops,dc=corp,dc=example"}, "LDAP_STAFF_GROUP"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(overrides, named):
    with pytest.raises(ImproperlyConfigured) as raised:
        ldap_settings({**BASE, **overrides})
    assert named in str(raised.value)
