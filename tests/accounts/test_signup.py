"""Sign-up through allauth's form: e-mail + handle, a personal organization, mandatory e-mail verification."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.organizations.models import Membership, Organization
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = reverse("account_signup")
LOGIN = reverse("account_login")
NEW_PASSWORD = "a-long-and-unusual-passphrase"


def sign_up(client: Client, *, email="ada@example.com", handle="ada", password=NEW_PASSWORD, password2=None):
    return client.post(
        SIGNUP, {"email": email, "username": handle, "password1": password, "password2": password2 or password}
    )


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def link_in(message) -> str:
    return re.search(r"https?://testserver(/\S+)", message.body).group(1)


def form_errors(response) -> dict:
    return response.context["form"].errors


def test_signing_up_creates_the_user_and_the_personal_organization():
    response = sign_up(Client())
    assert response.status_code == 302
    user = User.objects.get(email="ada@example.com")
    assert user.handle == "ada"
    assert user.check_password(NEW_PASSWORD)
    personal = Organization.objects.get(slug="ada")
    assert personal.is_personal and personal.personal_owner == user
    assert Membership.objects.get(organization=personal).user == user


def test_signing_up_sends_a_verification_email_and_does_not_sign_in():
    client = Client()
    response = sign_up(client)
    assert response["Location"] == reverse("account_email_verification_sent")
    assert not signed_in(client)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@example.com"]
    assert "/accounts/confirm-email/" in link_in(mail.outbox[0])
    assert not EmailAddress.objects.get(email="ada@example.com").verified


def test_login_is_refused_until_the_email_is_verified():
    sign_up(Client())
    mail.outbox.clear()
    client = Client()
    response = client.post(LOGIN, {"login": "ada@example.com", "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert not signed_in(client)


def test_the_emailed_link_verifies_the_address_and_login_then_works():
    sign_up(Client())
    path = link_in(mail.outbox[0])
    client = Client()
    assert client.get(path).status_code == 200
    response = client.post(path)
    assert response.status_code == 302
    assert EmailAddress.objects.get(email="ada@example.com").verified

    fresh = Client()
    response = fresh.post(LOGIN, {"login": "ADA@example.com", "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert signed_in(fresh)


def test_a_tampered_confirmation_link_verifies_nothing():
    sign_up(Client())
    path = link_in(mail.outbox[0]).rstrip("/") + "x/"
    client = Client()
    client.post(path)
    assert not EmailAddress.objects.get(email="ada@example.com").verified


@pytest.mark.parametrize(
    ("handle", "words"),
    [
        ("admin", "reserved"),
        ("settings", "reserved"),
        ("a", "at least 2"),
        ("-ada", "valid name"),
        ("ada--lovelace", "valid name"),
        ("ada_lovelace", "valid name"),
        ("ada lovelace", "valid name"),
        ("x" * 40, ""),
    ],
)
def test_a_reserved_or_malformed_handle_is_refused(handle, words):
    response = sign_up(Client(), handle=handle)
    assert response.status_code == 200
    errors = form_errors(response)
    assert "username" in errors
    assert words in " ".join(errors["username"])
    assert not User.objects.filter(email="ada@example.com").exists()
    assert not mail.outbox


def test_a_handle_taken_by_a_user_is_refused():
    UserFactory(handle="ada")
    response = sign_up(Client(), email="other@example.com", handle="ada")
    assert "username" in form_errors(response)
    assert not User.objects.filter(email="other@example.com").exists()


def test_a_handle_taken_by_an_organization_is_refused():
    OrganizationFactory(slug="analytical")
    response = sign_up(Client(), handle="analytical")
    assert "already taken" in " ".join(form_errors(response)["username"])
    assert not User.objects.filter(email="ada@example.com").exists()


def test_a_handle_differing_only_in_case_is_taken():
    UserFactory(handle="ada")
    response = sign_up(Client(), email="other@example.com", handle="ADA")
    assert "username" in form_errors(response)


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@Example.COM"])
def test_an_email_already_registered_makes_no_second_account_whatever_its_case(email):
    # allauth prevents account enumeration: the form answers as for a new address, and the owner of the
    # address is told by e-mail that someone tried to sign up with it.
    UserFactory(email="ada@example.com", handle="first")
    response = sign_up(Client(), email=email, handle="second")
    assert response.status_code == 302
    assert User.objects.count() == 1
    assert not Organization.objects.filter(slug="second").exists()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to[0].lower() == "ada@example.com"
    assert "already" in mail.outbox[0].subject.lower() + mail.outbox[0].body.lower()


@pytest.mark.parametrize("email", ["not-an-email", "ada@", "@example.com", "ada@example..com", ""])
def test_a_bad_email_is_refused(email):
    response = sign_up(Client(), email=email)
    assert response.status_code == 200
    assert "email" in form_errors(response)
    assert not User.objects.exists()


def test_mismatched_or_weak_passwords_are_refused():
    assert "password2" in form_errors(sign_up(Client(), password2="something-else-entirely"))
    assert "password1" in form_errors(sign_up(Client(), password="short"))
    assert not User.objects.exists()
