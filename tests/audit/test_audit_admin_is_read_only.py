"""Operators read audit events and chains in the Django admin, and can neither add, change nor delete them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditChain, AuditEvent
from tests.audit.conftest import chain_key, record_many, tamper
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    return client


def test_the_event_list_shows_events_and_searches_them(operator_client, org):
    record_many(org, 2, action="team.created")
    record_many(org, 1, action="member.added")

    response = operator_client.get(reverse("admin:audit_auditevent_changelist"), {"q": "member.added"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_the_event_list_filters_by_kind(operator_client, org):
    record_many(org, 2)

    response = operator_client.get(reverse("admin:audit_auditevent_changelist"), {"kind__exact": "checkpoint"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 0


def test_an_event_opens_read_only(operator_client, org):
    event = record_many(org, 1)[0]
    url = reverse("admin:audit_auditevent_change", args=[event.pk])

    response = operator_client.get(url)
    posted = operator_client.post(url, {"action": "forged"})

    assert response.status_code == 200
    assert b'name="action"' not in response.content
    assert posted.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_events_cannot_be_added_or_deleted(operator_client, org):
    event = record_many(org, 1)[0]

    assert operator_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert operator_client.get(reverse("admin:audit_auditevent_delete", args=[event.pk])).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_chains_are_listed_read_only_and_can_be_verified(operator_client, org):
    record_many(org, 2)
    chain = AuditChain.objects.get(key=chain_key(org))
    changelist = reverse("admin:audit_auditchain_changelist")

    assert operator_client.get(changelist).status_code == 200
    assert operator_client.get(reverse("admin:audit_auditchain_add")).status_code == 403
    response = operator_client.post(
        changelist, {"action": "verify_chains", "_selected_action": [chain.pk]}, follow=True
    )
    assert f"OK {chain.key}: 2 events verified" in response.content.decode()


def test_the_verify_action_reports_a_broken_chain(operator_client, org):
    events = record_many(org, 2)
    tamper("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [events[0].pk])
    chain = AuditChain.objects.get(key=chain_key(org))

    response = operator_client.post(
        reverse("admin:audit_auditchain_changelist"),
        {"action": "verify_chains", "_selected_action": [chain.pk]},
        follow=True,
    )

    assert f"BROKEN {chain.key}: first broken link at seq 1" in response.content.decode()


def test_staff_without_audit_permissions_see_nothing(client, org):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 403
