"""Every index of a table is written on each insert and on each update that changes an indexed column: a prediction's
Job row is inserted and then updated twice (claimed, finished) with its status, which several indexes hold, and its
usage event is inserted by the drain (analytics 0007 made that table lean already: this keeps it so). On the tables
every prediction writes, no index may be another's leading columns again (Django adds a single-column index
to each foreign key; a composite index that leads with that column already serves its lookups and cascades)."""

from __future__ import annotations

import pytest
from django.db import connection

HOT_TABLES = ("core_job", "inference_inferencejob", "analytics_usageevent")

INDEXES = """
SELECT c.relname, i.indisunique, i.indisprimary, pg_get_indexdef(i.indexrelid),
       ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %s::regclass
"""


def indexes_of(table: str) -> list[tuple[str, bool, bool, str, list[str]]]:
    with connection.cursor() as cursor:
        cursor.execute(INDEXES, [table])
        return cursor.fetchall()


@pytest.mark.django_db
@pytest.mark.parametrize("table", HOT_TABLES)
def test_no_index_repeats_the_leading_columns_of_another(table):
    indexes = indexes_of(table)
    assert len(indexes) >= 3, indexes  # the query reads this table's indexes

    repeated = [
        (name, columns, other)
        for name, unique, primary, _definition, columns in indexes
        if not unique and not primary
        for other, _u, _p, _d, longer in indexes
        if other != name and list(longer[: len(columns)]) == list(columns)
    ]

    assert repeated == []
    assert not [definition for *_, definition, _columns in indexes if "pattern_ops" in definition]


@pytest.mark.django_db
def test_lookups_by_organization_creator_version_and_deployment_still_have_an_index():
    leading = {table: {columns[0] for *_, columns in indexes_of(table)} for table in HOT_TABLES}

    assert {"organization_id", "creator_id", "kind", "status"} <= leading["core_job"]
    assert {"version_id", "deployment_id", "revision_id"} <= leading["inference_inferencejob"]
