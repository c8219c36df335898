"""Signing in with e-mail and password, and signing out (allauth)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("account_login")
LOGOUT = reverse("account_logout")


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_a_verified_user_signs_in_with_their_email_in_any_case():
    UserFactory(email="grace@example.com")
    client = Client()
    response = client.post(LOGIN, {"login": "Grace@Example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert signed_in(client)


def test_a_wrong_password_is_refused_with_a_form_error():
    UserFactory(email="grace@example.com")
    client = Client()
    response = client.post(LOGIN, {"login": "grace@example.com", "password": "not-the-password"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not signed_in(client)


def test_the_handle_is_not_a_login():
    UserFactory(email="grace@example.com", handle="grace")
    client = Client()
    client.post(LOGIN, {"login": "grace", "password": PASSWORD})
    assert not signed_in(client)


def test_a_deactivated_user_cannot_sign_in():
    UserFactory(email="grace@example.com", is_active=False)
    client = Client()
    client.post(LOGIN, {"login": "grace@example.com", "password": PASSWORD})
    assert not signed_in(client)


def test_signing_out_ends_the_session():
    user = UserFactory()
    client = Client()
    client.force_login(user)
    response = client.post(LOGOUT)
    assert response.status_code == 302
    assert not signed_in(client)
