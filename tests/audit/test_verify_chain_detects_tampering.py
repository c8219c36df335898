"""The verifier recomputes every hash and link and names the first broken link precisely."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditChain, AuditEvent
from apps.audit.verification import verify_chain
from tests.audit.conftest import chain_key, record_many, tamper

pytestmark = pytest.mark.django_db


def test_an_untouched_chain_verifies(org):
    events = record_many(org, 5)

    result = verify_chain(chain_key(org))

    assert result.ok
    assert (result.checked, result.start_seq, result.last_seq) == (5, 1, 5)
    assert result.head_hash == events[-1].hash
    assert str(result).startswith(f"OK {chain_key(org)}: 5 events verified")


def test_an_edited_event_is_a_hash_mismatch_at_its_seq(org):
    events = record_many(org, 5)
    tamper("UPDATE audit_auditevent SET action = 'nothing.happened' WHERE id = %s", [events[2].pk])

    result = verify_chain(chain_key(org))

    assert not result.ok
    assert result.problem.seq == 3
    assert result.problem.event_uuid == str(events[2].uuid)
    assert result.problem.reason == "hash mismatch: the event was edited"
    assert result.checked == 2


def test_an_edited_event_whose_hash_was_recomputed_breaks_the_next_link(org):
    events = record_many(org, 4)
    edited = AuditEvent.objects.get(pk=events[1].pk)
    edited.action = "nothing.happened"
    forged = edited.compute_hash()
    tamper("UPDATE audit_auditevent SET action = %s, hash = %s WHERE id = %s", ["nothing.happened", forged, edited.pk])

    result = verify_chain(chain_key(org))

    assert result.problem.seq == 3
    assert result.problem.event_uuid == str(events[2].uuid)
    assert "prev_hash does not match the previous event" in result.problem.reason


def test_a_deleted_event_is_named_as_the_missing_seq(org):
    events = record_many(org, 5)
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])

    result = verify_chain(chain_key(org))

    assert result.problem.seq == 2
    assert result.problem.reason == "missing seq 2: an event was deleted"
    assert result.problem.event_uuid == str(events[2].uuid), "the event found where seq 2 was due"


def test_a_deleted_first_event_is_found(org):
    events = record_many(org, 3)
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[0].pk])

    result = verify_chain(chain_key(org))

    assert result.problem.seq == 1
    assert result.problem.reason == "missing seq 1: an event was deleted"


def test_a_reordered_pair_breaks_the_link_at_the_first_swapped_seq(org):
    events = record_many(org, 5)
    second, third = events[1], events[2]
    # Swap their seqs (through a free seq, as the (chain, seq) pair is unique).
    tamper("UPDATE audit_auditevent SET seq = -1 WHERE id = %s", [second.pk])
    tamper("UPDATE audit_auditevent SET seq = 2 WHERE id = %s", [third.pk])
    tamper("UPDATE audit_auditevent SET seq = 3 WHERE id = %s", [second.pk])

    result = verify_chain(chain_key(org))

    assert result.problem.seq == 2
    assert result.problem.event_uuid == str(third.uuid)
    assert result.problem.reason == "prev_hash does not match the previous event: events reordered or removed"


def test_deleting_the_last_event_is_caught_by_the_head_row(org):
    events = record_many(org, 4)
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[-1].pk])

    result = verify_chain(chain_key(org))

    assert result.problem.seq == 4
    assert "the head row says seq 4 but the last event is seq 3" in result.problem.reason


def test_a_tampered_head_hash_is_found(org):
    record_many(org, 3)
    AuditChain.objects.filter(key=chain_key(org)).update(head_hash="f" * 64)

    result = verify_chain(chain_key(org))

    assert result.problem.seq == 3
    assert "the head row's hash does not match the last event" in result.problem.reason


def test_a_head_seq_behind_the_events_is_found(org):
    record_many(org, 3)
    AuditChain.objects.filter(key=chain_key(org)).update(head_seq=2)

    result = verify_chain(chain_key(org))

    assert not result.ok
    assert "the head row says seq 2 but the last event is seq 3" in result.problem.reason


def test_a_chain_with_every_event_deleted_is_broken(org):
    record_many(org, 3)
    tamper("DELETE FROM audit_auditevent WHERE organization_id = %s", [org.pk])

    result = verify_chain(chain_key(org))

    assert result.problem.seq == 1
    assert "every event was deleted" in result.problem.reason


def test_only_the_first_of_several_breaks_is_reported(org):
    events = record_many(org, 6)
    tamper("UPDATE audit_auditevent SET action = 'x' WHERE id IN (%s, %s)", [events[4].pk, events[1].pk])

    result = verify_chain(chain_key(org))

    assert result.problem.seq == 2


def test_tampering_with_one_chain_leaves_another_verifying(org, world):
    other = world.user("owner").personal_organization
    record_many(other, 2)
    events = record_many(org, 2)
    tamper("UPDATE audit_auditevent SET actor_label = 'mallory' WHERE id = %s", [events[0].pk])

    assert not verify_chain(chain_key(org)).ok
    assert verify_chain(chain_key(other)).ok
