"""A reused PostgreSQL connection is checked before a request's first query without a round trip
(apps/core/db/postgresql/base.py): a live one is kept and sent nothing; one the server ended is replaced, so the
request's own query runs on a new connection instead of failing. Real PostgreSQL; ``close_old_connections`` is what
Django runs at the start and end of every request (and core runs around every task)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.conf import settings
from django.db import close_old_connections, connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.fail("this checks the PostgreSQL backend: run it with DATABASE_URL (make test does)")


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid() /* health-check test */")
        return cursor.fetchone()[0]


def other_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=True)


def last_statement_of(pid: int) -> str:
    with other_connection() as other:
        return other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def test_the_backend_is_the_portal_one_with_health_checks_on():
    assert settings.DATABASES["default"]["ENGINE"] == "apps.core.db.postgresql"
    assert connection.health_check_enabled


def test_a_live_connection_is_kept_and_sent_nothing_by_the_check():
    pid = backend_pid()
    assert last_statement_of(pid).startswith("SELECT pg_backend_pid() /* health-check test */")

    close_old_connections()  # a new request begins: the reused connection is checked before its first query
    connection.close_if_health_check_failed()

    assert connection.health_check_done
    assert connection.connection is not None
    # Django's own check would have sent SELECT 1 and shown it here.
    assert last_statement_of(pid).startswith("SELECT pg_backend_pid() /* health-check test */")
    assert backend_pid() == pid


def test_a_connection_the_server_ended_is_replaced_before_the_next_query():
    pid = backend_pid()
    with other_connection() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        deadline = time.monotonic() + 10
        while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the terminated backend did not go away"
            time.sleep(0.01)

    close_old_connections()  # the next request
    new_pid = backend_pid()  # would raise OperationalError had the dead connection been used

    assert new_pid != pid


def test_a_connection_in_the_middle_of_a_transaction_is_not_called_idle_and_alive():
    backend_pid()
    connection.connection.execute("BEGIN")
    try:
        assert connection.idle_connection_alive() is False
    finally:
        connection.connection.execute("ROLLBACK")
    assert connection.idle_connection_alive() is True


def test_a_connection_psycopg_closed_is_not_alive():
    backend_pid()
    connection.connection.close()
    assert connection.idle_connection_alive() is False
    close_old_connections()
    assert backend_pid() > 0  # a new connection answers


def test_a_forked_process_whose_inherited_socket_number_was_reused_opens_its_own_connection():
    """A Celery pool process: forked with its parent's connection, whose descriptor Celery closes (``os.close``); the
    next socket the child opens takes the same number. The child must not take that socket for its connection (a
    query would go to the wrong peer) nor end the parent's session; it opens its own."""
    import os
    import socket

    parent_pid = backend_pid()
    inherited_fd = connection.connection.pgconn.socket
    child = os.fork()
    if child == 0:  # the child: no pytest, no exceptions out of here
        status = 1
        try:
            os.close(inherited_fd)  # what Celery's Django fixup does in a new pool process
            left, right = socket.socketpair()  # an idle socket now holds the inherited number
            if inherited_fd not in (left.fileno(), right.fileno()):
                status = 3  # could not reproduce the reuse: fail loudly rather than pass vacuously
            else:
                close_old_connections()  # the task's start
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    own = cursor.fetchone()[0]
                status = 0 if own != parent_pid else 2
        except BaseException:  # reported through the exit status
            status = 4
        finally:
            os._exit(status)
    deadline = time.monotonic() + 30
    while (finished := os.waitpid(child, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(child, 9)
            os.waitpid(child, 0)
            pytest.fail("the child's query hung: it went down the reused descriptor, to the wrong peer")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(finished[1]) == 0
    assert backend_pid() == parent_pid  # the parent's session was not ended by the child
