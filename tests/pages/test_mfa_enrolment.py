"""Enrolling an authenticator app: the page shows a QR code and the secret; a code computed from the secret
(RFC 6238) activates it and recovery codes are made; a wrong code is refused and activates nothing."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from tests.pages.mfa import enrol_totp, fresh_totp, sign_in, sign_in_and_confirm, wrong

pytestmark = pytest.mark.django_db


def test_member_enrols_totp_with_a_computed_code_and_gets_recovery_codes(world):
    user = world.user("member")
    secret, codes = enrol_totp(Client(), user.email)
    assert len(secret) >= 16
    types = set(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    assert types == {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}
    assert len(codes) >= 8


def test_changing_mfa_asks_for_the_password_again(world):
    client = Client()
    sign_in(client, world.user("member").email)
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))


def test_activation_page_shows_the_qr_code_and_the_secret(world):
    client = Client()
    sign_in_and_confirm(client, world.user("member").email)
    page = client.get(reverse("mfa_activate_totp"))
    body = page.content.decode()
    assert 'src="data:image/svg+xml;base64,' in body
    assert page.context["form"].secret in body


def test_a_wrong_code_does_not_activate_totp(world):
    client = Client()
    sign_in_and_confirm(client, world.user("member").email)
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret
    response = client.post(reverse("mfa_activate_totp"), {"code": wrong(fresh_totp(secret))})
    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert not Authenticator.objects.filter(user=world.user("member")).exists()


def test_deactivating_totp_removes_it(world):
    client = Client()
    enrol_totp(client, world.user("member").email)
    response = client.post(reverse("mfa_deactivate_totp"))
    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=world.user("member"), type=Authenticator.Type.TOTP).exists()
