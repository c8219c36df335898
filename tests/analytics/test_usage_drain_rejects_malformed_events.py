"""Malformed entries in the usage stream neither block the drain nor vanish: the drain stores the good events of the
same batch (COPY into a staging table, one INSERT ... ON CONFLICT), acknowledges the whole batch, and keeps each
entry it could not store in ``gpux:usage:rejected`` with its reason. A value the checks let through and PostgreSQL
refuses costs only its own event (the batch is split until the refused event is alone)."""

from __future__ import annotations

import json
import uuid

import pytest

from apps.analytics import drain, usage
from apps.analytics.models import UsageEvent
from tests.factories import OrganizationFactory
from tests.usage_support import drain_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def stream():
    client = usage.client()
    client.delete(drain.REJECTED)
    yield client
    client.delete(drain.REJECTED)


def _add(client, fields) -> bytes:
    return client.xadd(usage.STREAM, fields)


def _event(organization, **fields) -> dict:
    return {"id": uuid.uuid4().hex, "t": 1_780_000_000.5, "kind": "prediction", "org": organization.pk, **fields}


def _rejected(client) -> dict[bytes, str]:
    return {fields[b"entry"]: fields[b"reason"].decode() for _id, fields in client.xrange(drain.REJECTED)}


def test_malformed_entries_are_set_aside_with_their_reason_and_the_rest_of_the_batch_is_stored(stream):
    org = OrganizationFactory()
    good = [usage.record("download", organization_id=org.pk, items=2) for _ in range(3)]
    usage.flush()
    with_nul = _event(org, subject_label="a\x00b", metadata={"k\x00": "v\x00", "literal": "\\u0000"})
    bad = {
        _add(stream, {"e": b"{not json"}): "unreadable",
        _add(stream, {"other": b"x"}): "unreadable",
        _add(stream, {"e": json.dumps([1, 2])}): "not an object",
        _add(stream, {"e": json.dumps({"id": uuid.uuid4().hex, "t": 1.0, "kind": "job"})}): "missing field 'org'",
        _add(stream, {"e": json.dumps(_event(org, id="not-a-uuid"))}): "badly formed",
        _add(stream, {"e": json.dumps(_event(org, org="acme"))}): "invalid literal",
        _add(stream, {"e": json.dumps(_event(org, items=10**12))}): "items out of range",
        _add(stream, {"e": json.dumps(_event(org, status_code=99_999))}): "status_code out of range",
        _add(stream, {"e": json.dumps(_event(org, user_id=1e30))}): "user_id out of range",
        _add(stream, {"e": json.dumps(_event(org, latency_ms=float("nan")))}): "latency_ms is not finite",
        _add(stream, {"e": json.dumps(_event(org, t=1e20))}): "out of range",
    }
    _add(stream, {"e": json.dumps(with_nul)})

    report = drain_now()

    assert (report.inserted, report.rejected, report.dropped) == (4, len(bad), 0)
    stored = set(UsageEvent.objects.values_list("event_id", flat=True))
    assert stored == {uuid.UUID(one) for one in [*good, with_nul["id"]]}
    kept = UsageEvent.objects.get(event_id=with_nul["id"])
    assert (kept.subject_label, kept.metadata) == ("ab", {"k": "v", "literal": "\\u0000"})
    rejected = _rejected(stream)
    assert set(rejected) == set(bad)
    for entry, expected in bad.items():
        assert expected in rejected[entry], (expected, rejected[entry])
    assert stream.xlen(usage.STREAM) == 0  # the whole batch acknowledged: nothing blocks the next drain
    assert drain_now().inserted == drain_now().rejected == 0


def test_an_event_postgresql_refuses_costs_only_itself(stream, monkeypatch):
    """The checks loosened on purpose (as if one were missing): items beyond the int column reach PostgreSQL, which
    refuses the COPY; the drain splits the batch and rejects that event alone."""
    org = OrganizationFactory()
    monkeypatch.setattr(drain, "_integer", lambda value, name, **_range: int(value))
    events = [_event(org) for _ in range(6)]
    events[4]["items"] = 10**12
    entries = [_add(stream, {"e": json.dumps(one)}) for one in events]

    report = drain_now()

    assert (report.inserted, report.rejected) == (5, 1)
    assert UsageEvent.objects.count() == 5
    rejected = _rejected(stream)
    assert list(rejected) == [entries[4]]
    assert "refused by the database" in rejected[entries[4]]
    assert stream.xlen(usage.STREAM) == 0


def test_an_event_twice_in_one_batch_or_already_stored_is_inserted_once(stream):
    org = OrganizationFactory()
    first, second = _event(org), _event(org)
    _add(stream, {"e": json.dumps(first)})
    assert drain_now().inserted == 1
    for one in (first, second, second):
        _add(stream, {"e": json.dumps(one)})
    report = drain_now()
    assert (report.inserted, report.duplicates) == (1, 2)
    assert UsageEvent.objects.count() == 2


def test_without_copy_the_orm_path_keeps_the_same_rules(monkeypatch):
    """The embedded ``make run`` (SQLite) has no COPY: ``store_events`` writes through the ORM (``_insert_rows``),
    by the same rules. Run here on PostgreSQL by taking that branch; tests/test_embedded.py runs it on SQLite."""
    from apps.analytics.models import UsageEvent as Event
    from tests.factories import UserFactory

    org, user = OrganizationFactory(), UserFactory()
    kept = _event(org, user_id=user.pk, metadata={"job_kind": "x"})
    unknown_user = _event(org, user_id=10**9)
    gone = _event(org)
    gone["org"] = 10**9
    assert drain.store_events([kept]).inserted == 1
    monkeypatch.setattr(drain, "_copy_rows", drain._insert_rows)
    stored = drain.store_events([kept, unknown_user, unknown_user, gone])
    assert (stored.inserted, stored.duplicates, stored.dropped) == (1, 2, 1)
    assert Event.objects.get(event_id=uuid.UUID(unknown_user["id"])).actor_id is None  # a user gone: anonymous
    assert Event.objects.get(event_id=uuid.UUID(kept["id"])).metadata == {"job_kind": "x"}
    mine = drain.store_events([_event(org, metadata={"a": [1, 2]})])
    assert mine.inserted == 1 and Event.objects.filter(organization=org).count() == 3
