"""Django's PostgreSQL backend with a health check that costs no round trip (``ENGINE: apps.core.db.postgresql``).

With ``CONN_HEALTH_CHECKS`` Django checks a reused connection before a request's (or a task's) first query by
sending ``SELECT 1``: one more round trip on every request that reads or writes, the busiest routes included (an
asynchronous prediction is one ``INSERT``; the check doubled its statements). A connection the server ended (a
restart, a failover, ``pg_terminate_backend``, an idle timeout) is seen here without asking: the server's last words
(its ``FATAL`` message) or the closed socket make an idle connection readable, and a healthy idle connection has
nothing to read. So the check polls the socket, without waiting: anything to read, a hang-up or an error, or
psycopg's own state not idle and healthy, and the connection is closed and the next query opens a new one, as
Django does after a failed ``SELECT 1``.

The socket polled must still be the connection's own. A process forked after the connection was opened (a Celery
pool process) inherits it, and Celery closes the inherited descriptor there (``os.close``), so that the process
cannot disturb its parent's session. The next socket or file the child opens may take the same number. So the
connection remembers the process and the socket (device and inode) it was opened with. In another process, or with
another file behind the number, it is not alive. It is then dropped without a word to the server: the session
belongs to the parent, and the number to someone else.

What it cannot see, ``SELECT 1`` could not either without a timeout: a server gone without a word (its machine off,
the network cut) leaves the socket silent; the query then fails when TCP gives up, as it would have. A connection
after an error in the request is still checked Django's way (``is_usable``, a real ``SELECT 1``): an error can leave
a connection unusable without the server closing it.
"""

from __future__ import annotations

import os
import select

from django.db.backends.postgresql import base

# Connections inherited across a fork and dropped: kept referenced, so that psycopg never finishes them (that would
# send the server's goodbye down a descriptor number that is now someone else's, and close it).
_inherited: list = []


def _identity(connection) -> tuple[int, int, int]:
    """The process and the socket (device, inode) behind a psycopg connection."""
    status = os.fstat(connection.pgconn.socket)
    return os.getpid(), status.st_dev, status.st_ino


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        self.connection_identity = _identity(connection)
        return connection

    def _close(self) -> None:
        if self.connection is not None and not self.owns_connection():
            _inherited.append(self.connection)  # the session is the parent's, the descriptor maybe someone else's
            return
        super()._close()

    def owns_connection(self) -> bool:
        """Whether this process opened the connection and its socket is still the one it opened."""
        try:
            return _identity(self.connection) == getattr(self, "connection_identity", None)
        except Exception:  # no socket any more (closed, or never opened)
            return False

    def close_if_health_check_failed(self) -> None:
        if self.pool or self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if not self.idle_connection_alive():
            self.close()
        self.health_check_done = True

    def idle_connection_alive(self) -> bool:
        """Whether the open connection is idle, in psycopg's view healthy, and has nothing from the server waiting
        to be read (which, on an idle connection, is the server saying goodbye)."""
        from psycopg import pq

        connection = self.connection
        try:
            if connection.closed or connection.broken or not self.owns_connection():
                return False
            pgconn = connection.pgconn
            if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
                return False
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
            return not poller.poll(0)
        except Exception:  # the connection is in no state to say: replace it
            return False
