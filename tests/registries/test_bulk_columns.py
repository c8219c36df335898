"""The sync engine writes new rows through COPY with explicit column lists; every column it leaves out must be
one the database may fill with NULL. A new required field on these models fails here, not in a sync."""

from __future__ import annotations

import pytest
from django.apps import apps

from apps.registries.sync import COPY_COLUMNS


@pytest.mark.parametrize("label", sorted(COPY_COLUMNS))
def test_the_engine_writes_every_column_that_needs_a_value(label):
    model = apps.get_model(label)
    written = set(COPY_COLUMNS[label])
    known = {field.attname for field in model._meta.concrete_fields}
    assert written <= known, f"{label}: the engine writes columns the model does not have: {written - known}"
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname in written:
            continue
        assert field.null and not field.has_default(), (
            f"{label}.{field.attname} is left out of the engine's COPY but is NOT NULL or has a default: "
            "add it to apps/registries/sync.py's column list"
        )
