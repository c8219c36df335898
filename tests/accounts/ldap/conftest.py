"""LDAP tests run against the real slapd of tests/peers/ldap.py, configured as an operator would: LDAP_* variables
turned into settings by apps.accounts.ldap_config, and the directory backend added after the local ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

pytest.importorskip("ldap", reason="python-ldap (the enterprise extra) is not installed")

from apps.accounts.ldap_config import ldap_settings
from tests.peers.ldap import Person, SlapdServer, slapd  # noqa: F401  (the session fixture)

LOGIN = reverse("account_login")
DIRECTORY_BACKEND = "apps.accounts.ldap.DirectoryBackend"


@pytest.fixture
def use_directory(settings) -> Callable[[dict[str, str]], None]:
    """Configure the portal from LDAP_* variables, as gpux_portal/settings.py does from the environment."""

    def configure(environment: dict[str, str]) -> None:
        for name, value in ldap_settings(environment).items():
            setattr(settings, name, value)
        backends = [b for b in settings.AUTHENTICATION_BACKENDS if b != DIRECTORY_BACKEND]
        settings.AUTHENTICATION_BACKENDS = [*backends, DIRECTORY_BACKEND]

    return configure


@pytest.fixture
def directory(use_directory, slapd: SlapdServer) -> SlapdServer:  # noqa: F811
    """The OpenLDAP-style directory (ou=people, ou=groups), configured with the openldap preset."""
    use_directory(slapd.environment())
    return slapd


@pytest.fixture
def ad_directory(use_directory, slapd: SlapdServer) -> SlapdServer:  # noqa: F811
    """The Active Directory-style directory (ou=corp), configured with the active-directory preset."""
    use_directory(slapd.ad_environment())
    return slapd


def sign_in(person: Person | str, password: str | None = None, client: Client | None = None):
    """Post the normal sign-in form; (client, response)."""
    client = client or Client()
    login = person.email if isinstance(person, Person) else person
    secret = password if password is not None else person.password  # type: ignore[union-attr]
    return client, client.post(LOGIN, {"login": login, "password": secret})


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")
