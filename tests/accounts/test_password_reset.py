"""Password reset by e-mailed link (allauth)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

RESET = reverse("account_reset_password")
LOGIN = reverse("account_login")
NEW_PASSWORD = "a-brand-new-long-passphrase"


def reset_link(message) -> str:
    return re.search(r"https?://testserver(/accounts/password/reset/key/\S+)", message.body).group(1)


def can_sign_in(email: str, password: str) -> bool:
    client = Client()
    client.post(LOGIN, {"login": email, "password": password})
    return "_auth_user_id" in client.session


def test_a_reset_link_is_emailed_and_sets_a_new_password(settings):
    settings.AXES_ENABLED = False  # the old password is tried below on purpose
    user = UserFactory(email="grace@example.com")
    response = Client().post(RESET, {"email": "Grace@Example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["grace@example.com"]

    client = Client()
    page = client.get(reset_link(mail.outbox[0]), follow=True)
    assert page.status_code == 200
    form_path = page.redirect_chain[-1][0] if page.redirect_chain else reset_link(mail.outbox[0])
    done = client.post(form_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert can_sign_in("grace@example.com", NEW_PASSWORD)
    assert not can_sign_in("grace@example.com", PASSWORD)


def test_a_reset_link_works_only_once():
    UserFactory(email="grace@example.com")
    Client().post(RESET, {"email": "grace@example.com"})
    link = reset_link(mail.outbox[0])
    client = Client()
    form_path = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(form_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    again = Client()
    page = again.get(link, follow=True)
    assert page.context["token_fail"] is True


def test_a_tampered_reset_link_is_refused():
    user = UserFactory(email="grace@example.com")
    Client().post(RESET, {"email": "grace@example.com"})
    link = reset_link(mail.outbox[0]).rstrip("/")[:-3] + "abc/"
    page = Client().get(link, follow=True)
    assert page.context["token_fail"] is True
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_an_unknown_address_gets_the_same_answer_and_no_reset_link():
    response = Client().post(RESET, {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert all("/password/reset/key/" not in message.body for message in mail.outbox)


def test_a_malformed_address_is_refused_by_the_form():
    response = Client().post(RESET, {"email": "not-an-email"})
    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert not mail.outbox
