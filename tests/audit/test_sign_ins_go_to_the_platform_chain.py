"""Sign-ins, failed sign-ins and sign-outs are recorded on the platform chain, with the IP and never a password."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.audit.verification import verify_chain
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def platform_events(action: str):
    return AuditEvent.objects.filter(chain__key="platform", action=action).order_by("seq")


def sign_in(client, login: str, password: str):
    return client.post(
        reverse("account_login"),
        {"login": login, "password": password},
        REMOTE_ADDR="203.0.113.7",
        HTTP_USER_AGENT="pytest-browser/1.0",
    )


def test_a_sign_in_is_recorded_with_the_user_and_the_ip(client):
    user = UserFactory(email="alice@example.com")

    response = sign_in(client, "alice@example.com", PASSWORD)

    assert response.status_code == 302
    event = platform_events("auth.login").get()
    assert event.organization_id is None
    assert event.actor_id == user.pk
    assert event.actor_label == "alice@example.com"
    assert event.ip == "203.0.113.7"
    assert event.user_agent == "pytest-browser/1.0"
    assert verify_chain("platform").ok


def test_a_failed_sign_in_records_the_attempted_email_and_no_password(client):
    UserFactory(email="bob@example.com")

    response = sign_in(client, "bob@example.com", "not-the-password-123")

    assert response.status_code == 200  # the form again, with its error
    assert not platform_events("auth.login").exists()
    event = platform_events("auth.login_failed").get()
    assert event.actor_id is None
    assert event.actor_label == "bob@example.com"
    assert event.ip == "203.0.113.7"
    stored = json.dumps([event.diff, event.metadata, event.actor_label, event.target_label, event.user_agent])
    assert "not-the-password-123" not in stored
    assert "password" not in stored.lower()
    assert verify_chain("platform").ok


def test_a_failed_sign_in_for_an_unknown_address_is_recorded_too(client):
    sign_in(client, "nobody@example.com", "whatever-it-is-42")

    assert platform_events("auth.login_failed").get().actor_label == "nobody@example.com"


def test_a_sign_out_is_recorded(client):
    user = UserFactory(email="carol@example.com")
    sign_in(client, "carol@example.com", PASSWORD)

    response = client.post(reverse("account_logout"), REMOTE_ADDR="198.51.100.2")

    assert response.status_code == 302
    event = platform_events("auth.logout").get()
    assert event.actor_id == user.pk
    assert event.ip == "198.51.100.2"


def test_sign_ins_never_touch_an_organization_chain(client):
    user = UserFactory(email="dave@example.com")
    before = AuditEvent.objects.filter(organization_id=user.personal_organization.pk).count()

    sign_in(client, "dave@example.com", PASSWORD)
    sign_in(client, "dave@example.com", "wrong-password-000")

    assert AuditEvent.objects.filter(organization_id=user.personal_organization.pk).count() == before
    assert platform_events("auth.login").count() == 1


def test_repeated_failures_keep_being_recorded_while_locked_out(client, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    UserFactory(email="erin@example.com")

    responses = [sign_in(client, "erin@example.com", "wrong-password-000") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 429, 429], "locked out after the second failure"
    assert platform_events("auth.login_failed").count() == 3
    assert set(platform_events("auth.login_failed").values_list("actor_label", flat=True)) == {"erin@example.com"}
    assert verify_chain("platform").ok
