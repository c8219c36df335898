"""Break it as production does: PostgreSQL ends every connection of a running web server (a restart, a failover,
an idle timeout). The next requests answer 200 on new connections, none 500, with no web restart: each thread's
connection is checked before its request's first query (apps/core/db/postgresql/base.py) and replaced when the
server has ended it. Real gunicorn (the portal's own configuration, one process of four threads) and PostgreSQL."""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tests import jobs_support
from tests.factories import OrganizationFactory, UserFactory, make_token

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
THREADS = 4


def get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def web_backends() -> list[int]:
    """The server processes serving this database's other connections: the web server's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def test_requests_after_the_server_ended_every_connection_answer_200(tmp_path):
    token = make_token(UserFactory(), organization=OrganizationFactory())
    server, base = jobs_support.serve_portal(tmp_path / "web", threads=THREADS)
    try:
        jobs_support.wait_for_portal(base)
        url = f"{base}/api/v1/orgs/"  # reads the database on every request
        with ThreadPoolExecutor(max_workers=THREADS * 2) as pool:
            before = list(pool.map(lambda _: get(url, token), range(THREADS * 8)))
        assert set(before) == {200}
        ended = web_backends()
        assert ended, "the web server holds no connection to end"

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [ended])
        jobs_support.wait_for(
            lambda: not set(ended) & set(web_backends()), timeout=10, what="the ended connections to go"
        )

        with ThreadPoolExecutor(max_workers=THREADS * 2) as pool:
            after = list(pool.map(lambda _: get(url, token), range(THREADS * 8)))
        assert after == [200] * len(after), after
        assert server.poll() is None  # the same server, not restarted
        assert set(web_backends()).isdisjoint(ended)  # it serves on new connections
    finally:
        jobs_support.stop_portal(server)
