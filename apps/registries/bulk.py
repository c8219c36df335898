"""Bulk inserts through PostgreSQL's COPY: the sync engine's fast path for new rows.

``bulk_create`` spends most of a sync's time building model instances and preparing each value; COPY streams
plain rows. Columns come from the model's own fields (defaults and ``null`` included), so the rows are what the
ORM would have written. Primary keys, when the caller needs them, are taken from the table's sequence first.
Other databases (the embedded SQLite of ``make run``) use ``bulk_create``.
"""

from __future__ import annotations

import datetime as dt
import json
import os

from django.db import connection, models
from django.db.models import Q
from django.db.models.expressions import RawSQL


def copy_supported() -> bool:
    return connection.vendor == "postgresql"


def insert_tuples(
    model: type[models.Model], columns: tuple[str, ...], rows: list[tuple], *, return_ids: bool = False
) -> list[int]:
    """Insert ``rows``, tuples in the order of ``columns`` (field attnames, no primary key), into ``model``'s table.

    The fast path of the sync engine: no dicts, no per-field defaults, so ``columns`` must name every column that
    is neither nullable nor defaulted to NULL (tests/registries/test_bulk_columns.py checks the engine's lists).
    JSON columns take their JSON text. Returns the new primary keys in row order when ``return_ids``.
    """
    if not rows:
        return []
    meta = model._meta
    if not copy_supported():
        json_columns = {f.attname for f in meta.concrete_fields if isinstance(f, models.JSONField)}
        objects = model._default_manager.bulk_create(
            [
                model(
                    **{
                        name: json.loads(value) if name in json_columns and isinstance(value, str) else value
                        for name, value in zip(columns, row, strict=True)
                    }
                )
                for row in rows
            ]
        )
        return [obj.pk for obj in objects] if return_ids else []
    column_of = {field.attname: field.column for field in meta.concrete_fields}
    names = [column_of[attname] for attname in columns]
    ids: list[int] = []
    with connection.wrap_database_errors, connection.cursor() as wrapper:
        cursor = wrapper.cursor
        if return_ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            names = [meta.pk.column, *names]
        quoted = ", ".join(connection.ops.quote_name(name) for name in names)
        with cursor.copy(f"COPY {connection.ops.quote_name(meta.db_table)} ({quoted}) FROM STDIN") as copy:
            if return_ids:
                for new_id, row in zip(ids, rows, strict=True):
                    copy.write_row((new_id, *row))
            else:
                for row in rows:
                    copy.write_row(row)
    return ids


def copy_timestamp(value: dt.datetime) -> dt.datetime | str:
    """A timestamp for the rows of ``insert_tuples``, formatted once for all the rows that share it.

    psycopg formats a ``datetime`` in Python for every value of a COPY (about 4 µs each, nine per synced model);
    the ISO text is what it would send. The ORM path (SQLite) parses the text back."""
    return value.isoformat() if copy_supported() else value


def new_uuids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text, from one read of the system's random source.

    What ``uuid.uuid4()`` gives, without building a ``UUID`` object per row and having psycopg format each one:
    122 random bits, the version nibble set to 4 and the variant bits to 10."""
    digits = os.urandom(16 * count).hex()
    uuids = []
    for start in range(0, 32 * count, 32):
        d = digits[start : start + 32]
        variant = "89ab"[int(d[16], 16) & 3]
        uuids.append(f"{d[:8]}-{d[8:12]}-4{d[13:16]}-{variant}{d[17:20]}-{d[20:]}")
    return uuids


def array_literal(values: list) -> str:
    """PostgreSQL's text form of a one-dimensional array of ``values`` (strings or integers), each element
    quoted with its backslashes and double quotes escaped: one string for psycopg to send, where a Python list
    makes it format every element in Python (about 2 µs each)."""
    quoted = (str(value).replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


def any_of(model: type[models.Model], field: str, values: list) -> Q:
    """``field IN values`` as one array parameter (``= ANY(%s::type[])``) on PostgreSQL: a page's thousand ids
    cost one bound value instead of a thousand placeholders to compile and send. ``field`` is a concrete field of
    ``model`` (the column is quoted and qualified here; the values are bound, never interpolated)."""
    if not copy_supported():
        return Q(**{f"{field}__in": values})
    model_field = model._meta.get_field(field)
    column = model_field.column
    qualified = f"{connection.ops.quote_name(model._meta.db_table)}.{connection.ops.quote_name(column)}"
    # Text columns compare as text (a varchar(n) cast would cut longer values); others by their own type.
    text = isinstance(model_field, models.CharField | models.TextField)
    element = "text" if text else model_field.db_type(connection)
    condition = f"{qualified} = ANY(%s::{element}[])"
    return Q(RawSQL(condition, [array_literal(values)], output_field=models.BooleanField()))  # noqa: S611


def relax_commit() -> None:
    """In the current transaction, do not wait for the WAL flush at commit (PostgreSQL ``synchronous_commit``).

    Safe for sync pages: a page's rows and the cursor after it commit together, so a crash that loses the last
    commits only makes the next attempt read those pages again. Never used for anything else.
    """
    if copy_supported():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
