"""Audit trail exports: CSV and JSON lines, produced line by line so memory stays flat for any size.

The API streams these lines (``StreamingHttpResponse``); the export job writes them to a file. Both take an
``AuditEvent`` queryset that is already filtered and ordered; rows are read with ``.iterator(chunk_size=...)``
(a server-side cursor on PostgreSQL), so neither the queryset cache nor the whole file is ever held.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC
from typing import Any

from django.db.models import QuerySet

from apps.audit.models import AuditEvent

CHUNK_SIZE = 2000

# The columns of both formats, in order. ``actor`` is the actor's current handle (empty once the user is
# deleted); ``actor_label`` is who they were when the event was recorded (their e-mail then).
EXPORT_FIELDS = (
    "uuid",
    "seq",
    "kind",
    "created_at",
    "action",
    "actor",
    "actor_label",
    "target_type",
    "target_id",
    "target_label",
    "ip",
    "user_agent",
    "diff",
    "metadata",
    "prev_hash",
    "hash",
)

FORMATS = {
    # format name: (content type, file extension)
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
}

# A spreadsheet treats a cell starting with one of these as a formula (CSV injection); such cells are
# prefixed with an apostrophe in the CSV export. The JSON lines export is always verbatim.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def event_as_dict(event: AuditEvent) -> dict[str, Any]:
    """One event as plain JSON-ready values, keyed by ``EXPORT_FIELDS``."""
    actor = _actor_or_none(event)
    return {
        "uuid": str(event.uuid),
        "seq": event.seq,
        "kind": event.kind,
        "created_at": event.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "action": event.action,
        "actor": actor.handle if actor is not None else None,
        "actor_label": event.actor_label,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "diff": event.diff,
        "metadata": event.metadata,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _actor_or_none(event: AuditEvent):
    # The actor id has no database constraint: a deleted user leaves a dangling id, which reads as "nobody".
    if event.actor_id is None:
        return None
    try:
        return event.actor
    except AuditEvent.actor.RelatedObjectDoesNotExist:
        return None


def iter_events(queryset: QuerySet[AuditEvent], *, chunk_size: int = CHUNK_SIZE) -> Iterator[AuditEvent]:
    """The queryset's events, streamed from the database ``chunk_size`` rows at a time."""
    return queryset.select_related("actor").iterator(chunk_size=chunk_size)


class _Line:
    """A file-like object whose ``write`` hands back what it was given: lets ``csv.writer`` make one line."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    if text.startswith(_FORMULA_TRIGGERS):
        return "'" + text
    return text


def iter_csv_lines(queryset: QuerySet[AuditEvent], *, chunk_size: int = CHUNK_SIZE) -> Iterator[str]:
    """The CSV export: a header line, then one line per event (``diff`` and ``metadata`` as JSON text)."""
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_FIELDS)
    for event in iter_events(queryset, chunk_size=chunk_size):
        row = event_as_dict(event)
        yield writer.writerow([_csv_cell(row[name]) for name in EXPORT_FIELDS])


def iter_jsonl_lines(queryset: QuerySet[AuditEvent], *, chunk_size: int = CHUNK_SIZE) -> Iterator[str]:
    """The JSON lines export: one JSON object per line and event, keys as in ``EXPORT_FIELDS``."""
    for event in iter_events(queryset, chunk_size=chunk_size):
        yield json.dumps(event_as_dict(event), ensure_ascii=False, separators=(",", ":")) + "\n"


def iter_export_lines(
    queryset: QuerySet[AuditEvent], *, export_format: str, chunk_size: int = CHUNK_SIZE
) -> Iterator[str]:
    """The lines of ``export_format`` ("csv" or "jsonl"); a ``ValueError`` for any other format."""
    if export_format == "csv":
        return iter_csv_lines(queryset, chunk_size=chunk_size)
    if export_format == "jsonl":
        return iter_jsonl_lines(queryset, chunk_size=chunk_size)
    raise ValueError(f"Unknown audit export format {export_format!r}: use one of {', '.join(FORMATS)}.")


def batched(lines: Iterable[str], *, size: int = 64 * 1024) -> Iterator[bytes]:
    """Join lines into UTF-8 blocks of about ``size`` bytes, so a stream is not one write per line."""
    buffer: list[str] = []
    length = 0
    for line in lines:
        buffer.append(line)
        length += len(line)
        if length >= size:
            yield "".join(buffer).encode()
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer).encode()
