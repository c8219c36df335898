"""On PostgreSQL a trigger refuses UPDATE of audit events, and DELETE unless retention is running."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import prune_audit_events
from apps.audit.verification import verify_chain
from tests.audit.conftest import chain_key, record_backdated, record_many

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only"),
]


def run_sql(sql: str, params: list) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_an_update_through_raw_sql_is_refused(org):
    event = record_many(org, 1)[0]

    with pytest.raises(DatabaseError, match="append-only: UPDATE"):
        run_sql("UPDATE audit_auditevent SET action = 'nothing.happened' WHERE id = %s", [event.pk])

    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_a_delete_through_raw_sql_is_refused(org):
    event = record_many(org, 1)[0]

    with pytest.raises(DatabaseError, match="append-only: DELETE"):
        run_sql("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])

    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_a_queryset_delete_is_refused_by_the_database_too(org):
    record_many(org, 2)

    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(organization_id=org.pk)._raw_delete("default")

    assert AuditEvent.objects.filter(organization_id=org.pk).count() == 2


def test_the_orm_refuses_changes_before_the_database_is_asked(org):
    event = record_many(org, 1)[0]

    with pytest.raises(TypeError, match="append-only"):
        event.save()
    with pytest.raises(TypeError, match="append-only"):
        event.delete()
    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")


def test_retention_still_deletes_through_the_trigger(org):
    record_backdated(org, days_ago=[500, 450])
    record_many(org, 1)

    result = prune_audit_events(organization_id=org.pk, older_than=timezone.now() - timedelta(days=365))

    assert result.deleted == 2
    assert AuditEvent.objects.filter(chain__key=chain_key(org)).count() == 2  # the kept event and the checkpoint
    assert verify_chain(chain_key(org)).ok


def test_the_permission_to_delete_ends_with_the_prune(org):
    record_backdated(org, days_ago=[500])
    survivor = record_many(org, 1)[0]

    with transaction.atomic():
        prune_audit_events(organization_id=org.pk, older_than=timezone.now() - timedelta(days=365))
        # Same transaction, after the prune: the setting is off again.
        with pytest.raises(DatabaseError, match="append-only: DELETE"), transaction.atomic():
            AuditEvent.objects.filter(pk=survivor.pk)._raw_delete("default")

    assert AuditEvent.objects.filter(pk=survivor.pk).exists()
