"""Verifying a hash chain: recompute every event's hash and link, and name the first broken link.

A chain is intact when, from its start, the events have contiguous seqs, each event's ``prev_hash`` is the
hash of the event before it, each stored ``hash`` is what its fields hash to, and the head row (AuditChain)
points at the last event. The start is the newest checkpoint, when retention has written one: a checkpoint
carries the seq and hash of the last event it deleted, and the first remaining event must follow that seq and
link to that hash. Nothing older than that is trusted or read.

What the checks catch, and what they cannot: an edited, deleted, inserted or reordered event, or a head row
that disagrees with the events, is found. Someone able to rewrite every event after a point *and* the head row
can forge a consistent chain, since the hashes carry no secret: keep the printed head hash somewhere else
(a ticket, a log shipped off the machine) and compare it later to detect that too.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from apps.audit.models import GENESIS_HASH, AuditChain, AuditEvent

CHUNK_SIZE = 2000

EDITED = "hash mismatch: the event was edited"
DELETED = "missing seq {seq}: an event was deleted"
RELINKED = "prev_hash does not match the previous event: events reordered or removed"
HEAD_SEQ = "the head row says seq {head} but the last event is seq {last}: {what}"
HEAD_HASH = "the head row's hash does not match the last event (seq {seq}): the head was tampered with"
BAD_CHECKPOINT = "checkpoint metadata is unreadable (no last_deleted_seq / last_deleted_hash)"


@dataclass(frozen=True)
class ChainBreak:
    """The first place where a chain stops verifying: the seq, the event found there (if any), and why."""

    seq: int
    reason: str
    event_uuid: str | None = None

    def __str__(self) -> str:
        where = f"seq {self.seq}" + (f" (event {self.event_uuid})" if self.event_uuid else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of verifying one chain."""

    chain_key: str
    checked: int
    start_seq: int | None
    last_seq: int | None
    head_hash: str
    checkpoint_seq: int | None = None
    problem: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def start(self) -> str:
        return "genesis" if self.checkpoint_seq is None else f"the checkpoint at seq {self.checkpoint_seq}"

    def __str__(self) -> str:
        if self.problem is not None:
            return f"BROKEN {self.chain_key}: first broken link at {self.problem}"
        if self.checked == 0:
            return f"OK {self.chain_key}: empty chain (nothing recorded, or everything pruned)"
        return (
            f"OK {self.chain_key}: {self.checked} events verified, seq {self.start_seq}..{self.last_seq}, "
            f"starting from {self.start}; head {self.head_hash}"
        )


class ChainNotFound(LookupError):
    pass


def _starting_point(chain: AuditChain) -> tuple[int, str, int | None] | ChainBreak:
    """(first seq due, hash it must link to, checkpoint seq) from the newest checkpoint, or genesis."""
    checkpoint = (
        AuditEvent.objects.filter(chain=chain, kind=AuditEvent.Kind.CHECKPOINT)
        .order_by("-seq")
        .only("uuid", "seq", "metadata")
        .first()
    )
    if checkpoint is None:
        return 1, GENESIS_HASH, None
    meta = checkpoint.metadata if isinstance(checkpoint.metadata, dict) else {}
    last_seq, last_hash = meta.get("last_deleted_seq"), meta.get("last_deleted_hash")
    if not isinstance(last_seq, int) or not isinstance(last_hash, str) or last_seq >= checkpoint.seq:
        return ChainBreak(seq=checkpoint.seq, event_uuid=str(checkpoint.uuid), reason=BAD_CHECKPOINT)
    return last_seq + 1, last_hash, checkpoint.seq


def _recomputed_hash(event: AuditEvent) -> str | None:
    try:
        return event.compute_hash()
    except (TypeError, ValueError):  # a value tampered into something the canonical form cannot hold
        return None


def _walk(chain: AuditChain) -> VerificationResult:
    start = _starting_point(chain)
    if isinstance(start, ChainBreak):
        return VerificationResult(chain.key, 0, None, None, chain.head_hash, problem=start)
    expected_seq, expected_prev, checkpoint_seq = start

    def result(problem: ChainBreak | None = None) -> VerificationResult:
        return VerificationResult(
            chain_key=chain.key,
            checked=0 if last_seq is None else last_seq - start_seq + 1,
            start_seq=start_seq,
            last_seq=last_seq,
            head_hash=chain.head_hash,
            checkpoint_seq=checkpoint_seq,
            problem=problem,
        )

    start_seq, last_seq, last_hash = None, None, None
    events = AuditEvent.objects.filter(chain=chain, seq__gte=expected_seq).order_by("seq")
    for event in events.iterator(chunk_size=CHUNK_SIZE):
        uuid = str(event.uuid)
        if event.seq != expected_seq:  # only ever greater: seqs are unique per chain and read in order
            return result(ChainBreak(seq=expected_seq, event_uuid=uuid, reason=DELETED.format(seq=expected_seq)))
        if event.prev_hash != expected_prev:
            return result(ChainBreak(seq=event.seq, event_uuid=uuid, reason=RELINKED))
        if _recomputed_hash(event) != event.hash:
            return result(ChainBreak(seq=event.seq, event_uuid=uuid, reason=EDITED))
        start_seq = event.seq if start_seq is None else start_seq
        last_seq, last_hash = event.seq, event.hash
        expected_seq, expected_prev = event.seq + 1, event.hash

    # The head row must point at the last event: otherwise events were cut from the end (or the head edited).
    head_seq = chain.head_seq
    if last_seq is None:
        # No event at all from the start on (a checkpoint would have been one): only a new chain looks so.
        if head_seq != 0 or chain.head_hash != GENESIS_HASH:
            what = "every event was deleted" if head_seq > 0 else "the head was tampered with"
            return result(ChainBreak(seq=expected_seq, reason=HEAD_SEQ.format(head=head_seq, last="none", what=what)))
        return result()
    if head_seq != last_seq:
        if head_seq > last_seq:
            what = f"events after seq {last_seq} were deleted"
            return result(ChainBreak(seq=last_seq + 1, reason=HEAD_SEQ.format(head=head_seq, last=last_seq, what=what)))
        what = "the head was tampered with"
        return result(ChainBreak(seq=last_seq, reason=HEAD_SEQ.format(head=head_seq, last=last_seq, what=what)))
    if chain.head_hash != last_hash:
        return result(ChainBreak(seq=last_seq, reason=HEAD_HASH.format(seq=last_seq)))
    return result()


def verify_chain(key: str) -> VerificationResult:
    """Verify the chain named ``key`` ("platform" or "org:<id>"), streaming its events in seq order.

    On PostgreSQL, when called outside a transaction, the head row and the events are read from one
    REPEATABLE READ snapshot, so events appended while verifying neither break nor extend what is checked.
    """
    # Only a transaction opened here can still choose its isolation level (no query has run in it yet).
    fresh = connection.vendor == "postgresql" and not connection.in_atomic_block and connection.get_autocommit()
    with transaction.atomic():
        if fresh:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        chain = AuditChain.objects.filter(key=key).first()
        if chain is None:
            raise ChainNotFound(f"No audit chain “{key}”.")
        return _walk(chain)


def verify_all_chains() -> list[VerificationResult]:
    """``verify_chain`` for every chain, platform first."""
    keys = sorted(AuditChain.objects.values_list("key", flat=True), key=lambda k: (k != AuditChain.PLATFORM_KEY, k))
    return [verify_chain(key) for key in keys]


# --- the last verification, for monitoring (docs/operator/monitoring.md: gpux_audit_chains) -------------------------

LAST_VERIFICATION_KEY = "gpux:audit:last-verification"


def record_verification(results: list[VerificationResult], *, at: float | None = None) -> dict:
    """Keep the outcome of verifying every chain where ``/metrics`` reads it (the cache, for a week): how many chains
    were intact, how many broken (and which), and when. Written by the periodic ``audit.verify_audit_chains`` task
    and by ``manage.py verify_audit_chain --all``."""
    import time

    from django.core.cache import cache

    summary = {
        "at": time.time() if at is None else at,
        "intact": sum(1 for result in results if result.ok),
        "broken": sum(1 for result in results if not result.ok),
        "broken_chains": [result.chain_key for result in results if not result.ok][:50],
    }
    cache.set(LAST_VERIFICATION_KEY, summary, timeout=7 * 24 * 3600)
    return summary


def last_verification() -> dict | None:
    """What ``record_verification`` kept last, or None."""
    from django.core.cache import cache

    return cache.get(LAST_VERIFICATION_KEY)
