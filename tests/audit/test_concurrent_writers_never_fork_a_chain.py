"""Writers on separate database connections queue on the chain's head row: the chain never forks."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.audit.models import AuditChain, AuditEvent
from apps.audit.services import record_event
from apps.audit.verification import verify_chain
from tests.factories import OrganizationFactory

THREADS = 4
EVENTS_PER_THREAD = 25


@pytest.mark.django_db(transaction=True)
def test_four_threads_writing_one_chain_leave_it_contiguous_and_verifiable():
    organization = OrganizationFactory(slug="busy")
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(EVENTS_PER_THREAD):
                record_event(action="load.test", organization=organization, metadata={"thread": number, "i": i})
        except BaseException as exc:  # reported below: an exception in a thread would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection; give it back

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    key = AuditChain.key_for(organization.pk)
    events = list(AuditEvent.objects.filter(chain__key=key).order_by("seq").values("seq", "prev_hash", "hash"))
    assert [e["seq"] for e in events] == list(range(1, THREADS * EVENTS_PER_THREAD + 1))
    assert len({e["prev_hash"] for e in events}) == len(events), "two events on one parent would be a fork"
    by_thread = AuditEvent.objects.filter(chain__key=key).values_list("metadata", flat=True)
    assert sorted((m["thread"], m["i"]) for m in by_thread) == [
        (t, i) for t in range(THREADS) for i in range(EVENTS_PER_THREAD)
    ]
    result = verify_chain(key)
    assert result.ok, str(result)
    assert result.checked == THREADS * EVENTS_PER_THREAD


@pytest.mark.django_db(transaction=True)
def test_the_first_events_of_a_new_chain_race_safely():
    # No head row yet: every thread tries to create it at once.
    organization = OrganizationFactory(slug="fresh")
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            start.wait(timeout=30)
            record_event(action="first.event", organization=organization)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    key = AuditChain.key_for(organization.pk)
    assert AuditChain.objects.filter(key=key).count() == 1
    assert verify_chain(key).ok
    assert AuditChain.objects.get(key=key).head_seq == THREADS
