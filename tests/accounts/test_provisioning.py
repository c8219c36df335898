"""apps.accounts.provisioning: the users an identity provider vouches for (shared by LDAP, SAML and SCIM)."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress

from apps.accounts.models import ExternalIdentity, User
from apps.accounts.provisioning import ExternalProfile, ProvisioningRefused, provision_user, suggest_handle
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def profile(**overrides) -> ExternalProfile:
    values = {"source": "test-idp", "subject": "id-1", "email": "ada@idp.example", "email_verified": True}
    values.update(overrides)
    return ExternalProfile(**values)


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        (["ada.lovelace"], "ada-lovelace"),
        (["Ödön Ödd!!"], "odon-odd"),
        (["ada@idp.example"], "ada"),
        (["x", "grace"], "grace"),  # one letter is no handle
        (["admin"], "admin-2"),  # reserved words get a suffix like taken ones
        (["a" * 60], "a" * 39),
    ],
)
def test_handles_are_made_valid_from_the_hints(hints, expected):
    assert suggest_handle(hints) == expected


def test_a_taken_handle_or_organization_slug_gets_the_next_free_suffix():
    UserFactory(handle="ada")
    OrganizationFactory(slug="ada-2")
    assert suggest_handle(["ada"]) == "ada-3"


def test_no_usable_hint_gives_a_random_user_handle():
    assert suggest_handle(["!", ""]).startswith("user-")


def test_an_unverified_address_never_reaches_an_existing_account():
    existing = UserFactory(email="ada@idp.example")
    with pytest.raises(ProvisioningRefused):
        provision_user(profile(email_verified=False))
    assert not ExternalIdentity.objects.filter(user=existing).exists()


def test_a_new_person_with_an_unverified_address_gets_an_account_whose_address_is_unverified():
    user, created = provision_user(profile(email_verified=False, handle_hints=("ada",)))
    assert created
    assert not EmailAddress.objects.get(user=user).verified


def test_the_identity_finds_the_user_again_after_their_address_changed_and_the_address_follows():
    user, _ = provision_user(profile(handle_hints=("ada",)))
    again, created = provision_user(profile(email="ada.lovelace@idp.example"))
    assert (again, created) == (user, False)
    user.refresh_from_db()
    assert user.email == "ada.lovelace@idp.example"
    assert EmailAddress.objects.get(user=user, primary=True).email == "ada.lovelace@idp.example"


def test_a_missing_address_is_refused_with_a_message_for_the_person():
    with pytest.raises(ProvisioningRefused) as raised:
        provision_user(profile(email=""))
    assert "e-mail address" in str(raised.value)
    assert not User.objects.exists()
