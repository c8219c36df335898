"""PostgreSQL gets a query's parameters apart from its text (psycopg's server-side binding) and prepares a statement
that a connection sends repeatedly, so the web and the workers quote nothing in Python and PostgreSQL does not parse
and plan the same query again (gpux_portal/settings.py, ``DB_SERVER_SIDE_BINDING``). Real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.accounts.models import User

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.fail("this checks the PostgreSQL backend: run it with DATABASE_URL (make test does)")


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_parameters_travel_apart_and_a_repeated_query_is_prepared():
    assert settings.DATABASES["default"]["OPTIONS"]["server_side_binding"] is True
    user = User.objects.create_user("b@example.com", "bound", "x" * 12)
    connection.close()  # a fresh connection: nothing prepared on it yet

    User.objects.filter(handle=user.handle).first()
    assert not [s for s in prepared_statements() if '"accounts_user"' in s]

    for _ in range(6):  # psycopg prepares a query on its fifth run on a connection
        assert User.objects.filter(handle=user.handle).first() == user
    prepared = [s for s in prepared_statements() if 'FROM "accounts_user"' in s]
    assert prepared, "the repeated query was not prepared"
    assert "$1" in prepared[0]  # its parameter is bound by the server, not quoted into the text
    assert "bound" not in prepared[0]


def test_a_value_that_would_need_quoting_is_stored_as_sent():
    awkward = "o'hara \\ 100% ; -- $1 %s"
    user = User.objects.create_user("q@example.com", "quoted", "x" * 12)
    User.objects.filter(pk=user.pk).update(name=awkward)
    assert User.objects.get(name=awkward).pk == user.pk


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "True 5"),
        ({"DB_PREPARE_THRESHOLD": "0"}, "True None"),  # behind PgBouncer in transaction mode: nothing prepared
        ({"DB_SERVER_SIDE_BINDING": "0", "DB_PREPARE_THRESHOLD": "0"}, "False None"),
    ],
)
def test_the_switches_for_a_pooler_that_cannot_keep_prepared_statements(environment, expected):
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "o = settings.DATABASES['default']['OPTIONS']; print(o['server_side_binding'], o['prepare_threshold'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DB_SERVER_SIDE_BINDING", "DB_PREPARE_THRESHOLD")}
    env.update(environment, DJANGO_SETTINGS_MODULE="gpux_portal.settings")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == expected
