"""Retention deletes old events behind a checkpoint; the verifier starts from the newest checkpoint."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.audit.models import AuditChain, AuditEvent
from apps.audit.services import prune_audit_events
from apps.audit.verification import verify_chain
from tests.audit.conftest import chain_key, record_backdated, record_many, tamper
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def a_year_ago():
    return timezone.now() - timedelta(days=365)


def test_pruning_writes_a_checkpoint_carrying_the_last_deleted_event(org):
    old = record_backdated(org, days_ago=[500, 450, 400])
    recent = record_many(org, 2)

    result = prune_audit_events(organization_id=org.pk, older_than=a_year_ago())

    assert result.deleted == 3
    checkpoint = result.checkpoint
    assert checkpoint.kind == AuditEvent.Kind.CHECKPOINT
    assert checkpoint.action == "audit.checkpoint"
    assert checkpoint.seq == 6, "appended after the head, never in place of a deleted event"
    assert checkpoint.metadata["last_deleted_seq"] == 3
    assert checkpoint.metadata["last_deleted_hash"] == old[-1].hash
    assert checkpoint.metadata["deleted_count"] == 3
    remaining = list(AuditEvent.objects.filter(chain__key=chain_key(org)).values_list("seq", flat=True))
    assert remaining == [4, 5, 6]
    assert [e.pk for e in recent] == list(
        AuditEvent.objects.filter(seq__in=[4, 5], chain__key=chain_key(org)).values_list("pk", flat=True)
    )


def test_a_chain_cut_at_a_checkpoint_verifies(org):
    record_backdated(org, days_ago=[500, 450, 400])
    record_many(org, 2)
    prune_audit_events(organization_id=org.pk, older_than=a_year_ago())
    record_many(org, 2)

    result = verify_chain(chain_key(org))

    assert result.ok, str(result)
    assert (result.start_seq, result.last_seq, result.checkpoint_seq) == (4, 8, 6)
    assert "starting from the checkpoint at seq 6" in str(result)


def test_a_chain_pruned_entirely_verifies_from_its_checkpoint(org):
    record_backdated(org, days_ago=[500, 450])

    prune_audit_events(organization_id=org.pk, older_than=a_year_ago())

    assert list(AuditEvent.objects.filter(chain__key=chain_key(org)).values_list("kind", flat=True)) == ["checkpoint"]
    assert verify_chain(chain_key(org)).ok


def test_an_event_deleted_right_after_a_checkpoint_is_found(org):
    record_backdated(org, days_ago=[500, 450])
    checkpoint = prune_audit_events(organization_id=org.pk, older_than=a_year_ago()).checkpoint
    after = record_many(org, 3)
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [after[0].pk])

    result = verify_chain(chain_key(org))

    assert result.problem.seq == checkpoint.seq + 1
    assert result.problem.reason == f"missing seq {checkpoint.seq + 1}: an event was deleted"


def test_the_first_event_kept_by_retention_cannot_be_deleted_unnoticed(org):
    record_backdated(org, days_ago=[500, 450])
    kept = record_many(org, 2)  # seq 3 and 4: newer than the cut, older than the checkpoint (seq 5)
    prune_audit_events(organization_id=org.pk, older_than=a_year_ago())
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [kept[0].pk])

    result = verify_chain(chain_key(org))

    assert result.problem.seq == 3
    assert result.problem.reason == "missing seq 3: an event was deleted"


def test_a_checkpoint_whose_metadata_was_edited_is_found(org):
    record_backdated(org, days_ago=[500, 450, 400])
    checkpoint = prune_audit_events(organization_id=org.pk, older_than=a_year_ago()).checkpoint
    # Claim one more event was pruned, to hide deleting the first kept one.
    tamper(
        "UPDATE audit_auditevent SET metadata = jsonb_set(metadata, '{last_deleted_seq}', '4') WHERE id = %s",
        [checkpoint.pk],
    )

    result = verify_chain(chain_key(org))

    assert not result.ok
    assert result.problem.event_uuid == str(checkpoint.uuid)


def test_a_second_prune_supersedes_the_first_checkpoint(org):
    record_backdated(org, days_ago=[900, 800])
    first = prune_audit_events(organization_id=org.pk, older_than=timezone.now() - timedelta(days=700)).checkpoint
    record_many(org, 2)

    second = prune_audit_events(organization_id=org.pk, older_than=timezone.now() + timedelta(seconds=1))

    assert not AuditEvent.objects.filter(pk=first.pk).exists(), "the newer checkpoint stands for it"
    assert second.checkpoint.metadata["last_deleted_seq"] == first.seq + 2
    assert verify_chain(chain_key(org)).ok


def test_a_prune_with_nothing_old_enough_changes_nothing(org):
    record_backdated(org, days_ago=[500])
    checkpoint = prune_audit_events(organization_id=org.pk, older_than=a_year_ago()).checkpoint

    result = prune_audit_events(organization_id=org.pk, older_than=a_year_ago())

    assert result.deleted == 0
    assert result.checkpoint is None
    assert AuditEvent.objects.filter(pk=checkpoint.pk).exists(), "the only checkpoint is never pruned alone"
    assert AuditChain.objects.get(key=chain_key(org)).head_seq == checkpoint.seq


def test_an_old_event_recorded_after_a_young_one_is_kept_with_it(org):
    record_many(org, 1)
    record_backdated(org, days_ago=[500])  # a clock stepped back: older than the event before it

    result = prune_audit_events(organization_id=org.pk, older_than=a_year_ago())

    assert result.deleted == 0
    assert AuditEvent.objects.filter(chain__key=chain_key(org)).count() == 2


def test_a_dry_run_counts_and_deletes_nothing(org):
    record_backdated(org, days_ago=[500, 450])

    result = prune_audit_events(organization_id=org.pk, older_than=a_year_ago(), dry_run=True)

    assert result.deleted == 2
    assert AuditEvent.objects.filter(chain__key=chain_key(org)).count() == 2


def test_the_platform_chain_is_pruned_the_same_way(db):
    record_backdated(None, days_ago=[500])
    record_many(None, 1)

    result = prune_audit_events(platform=True, older_than=a_year_ago())

    assert result.chain_key == "platform"
    assert result.deleted == 1
    assert verify_chain("platform").ok


def test_naming_no_chain_or_two_chains_is_refused(org):
    with pytest.raises(ValidationError) as neither:
        prune_audit_events(older_than=a_year_ago())
    with pytest.raises(ValidationError):
        prune_audit_events(organization_id=org.pk, platform=True, older_than=a_year_ago())
    assert "organization_id" in neither.value.message_dict


def test_the_prune_command_prunes_every_chain_by_age(org):
    other = OrganizationFactory()
    record_backdated(org, days_ago=[40, 35])
    record_backdated(other, days_ago=[40])
    record_backdated(None, days_ago=[10])
    out = StringIO()

    call_command("prune_audit", "--days", "30", stdout=out)

    assert f"{chain_key(org)}: deleted 2 event(s) up to seq 2, checkpoint at seq 3" in out.getvalue()
    assert f"{chain_key(other)}: deleted 1 event(s)" in out.getvalue()
    assert "Deleted 3 audit event(s) older than 30 day(s)" in out.getvalue()
    assert AuditEvent.objects.filter(chain__key="platform").count() == 1, "10 days old: kept"
    for key in (chain_key(org), chain_key(other), "platform"):
        assert verify_chain(key).ok


def test_the_prune_command_defaults_to_the_retention_setting(org, settings):
    settings.AUDIT_RETENTION_DAYS = 100
    record_backdated(org, days_ago=[101, 99])
    out = StringIO()

    call_command("prune_audit", stdout=out)

    assert "older than 100 day(s)" in out.getvalue()
    assert AuditEvent.objects.filter(chain__key=chain_key(org), kind="event").count() == 1


def test_the_prune_command_dry_run_changes_nothing(org):
    record_backdated(org, days_ago=[40])
    out = StringIO()

    call_command("prune_audit", "--days", "30", "--dry-run", stdout=out)

    assert "would delete 1 event(s)" in out.getvalue()
    assert AuditEvent.objects.filter(chain__key=chain_key(org)).count() == 1


def test_the_prune_command_refuses_a_retention_below_one_day(db):
    with pytest.raises(CommandError, match="--days must be at least 1"):
        call_command("prune_audit", "--days", "0")
