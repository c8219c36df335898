"""Signing in with an address not yet verified says why and offers the link again; the link is sent again (within
allauth's rate limit) to an address that waits for it, and the answer is the same for any address; mails greet from
the product, not from the host name; a new organization's slug follows its name."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "verify"}}


def test_signing_in_unverified_explains_why_and_offers_the_link_again():
    UserFactory(email="ada@example.com", handle="ada", verified=False)
    response = Client().post("/accounts/login/", {"login": "ada@example.com", "password": PASSWORD}, follow=True)
    page = response.content.decode()
    assert "Before you can sign in, your e-mail address needs verifying" in page
    assert 'id="verification-resend-form"' in page


def test_the_link_is_sent_again_to_an_address_that_waits_for_it_and_greets_from_the_product():
    UserFactory(email="ada@example.com", handle="ada", verified=False)
    client = Client(HTTP_HOST="testserver")
    response = client.post("/accounts/verification/resend/", {"email": "Ada@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/confirm-email/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.com"]
    body = mail.outbox[0].body
    assert "Hello from GPUX Portal!" in body and "Hello from testserver" not in body
    assert mail.outbox[0].subject.startswith("[GPUX Portal]")
    # Again at once: allauth's rate limit holds it back, with the same answer.
    again = client.post("/accounts/verification/resend/", {"email": "ada@example.com"})
    assert again.status_code == 302 and len(mail.outbox) == 1


def test_an_unknown_address_gets_the_same_answer_and_no_mail():
    response = Client().post("/accounts/verification/resend/", {"email": "nobody@example.com"}, follow=True)
    assert response.status_code == 200 and "If nobody@example.com waits for verification" in response.content.decode()
    assert mail.outbox == []


@pytest.mark.parametrize("email", ["", "not an address"])
def test_a_malformed_address_answers_400_naming_the_field(email):
    response = Client().post("/accounts/verification/resend/", {"email": email})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'name="email"' in page and "invalid-feedback" in page
    assert mail.outbox == []


def test_the_new_organization_form_asks_the_name_first_and_fills_the_slug_from_it(world):
    client = Client()
    client.force_login(world.user("member"))
    page = client.get("/orgs/new/").content.decode()
    assert page.index('name="name"') < page.index('name="slug"')
    assert "slug.value = slugify(name.value)" in page
