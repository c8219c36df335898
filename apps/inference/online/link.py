"""One thread's own connection to Redis, for the online serving path's hot round trips: the serving loop's
(apps/inference/online/loop.py) and each web thread's admission and wait (apps/inference/online/gateway.py)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

IDLE_CHECK_SECONDS = 1.0

try:  # hiredis (a dependency: redis-py's reply parser) also writes the protocol, in C
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - redis-py's own packing then
    _hiredis_pack = None


class RedisLink:
    """A connection to Redis used by one thread alone: commands sent and their replies read on one connection,
    without redis-py's connection pool, retry and argument layers around each command (a third of the serving
    loop's Python time went there: a pool's lock and fork check, a retry wrapper, a deprecation decorator, per
    command). A reply that is an error raises; a connection that fails raises ``redis.ConnectionError`` (or
    ``TimeoutError``), and its user makes a new link."""

    def __init__(self, url: str, *, socket_timeout: float | None = None) -> None:
        import redis

        self._pool = redis.ConnectionPool.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=2)
        self.connection = self._pool.make_connection()
        self.connection.connect()
        self.pid, self.url = os.getpid(), url
        self._shas: dict[str, str] = {}
        self._used = time.monotonic()

    def _ready(self) -> None:
        """A link idle for more than ``IDLE_CHECK_SECONDS`` checks its connection (PING) before its next command
        and connects again when that fails: a Redis restarted while the link was idle costs a round trip, not the
        request. (A command is never sent twice: the check is before it.)"""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        now = time.monotonic()
        if now - self._used > IDLE_CHECK_SECONDS:
            try:
                self.connection.send_command("PING", check_health=False)
                self.connection.read_response()
            except (RedisConnectionError, RedisTimeoutError, OSError):
                self.connection.disconnect()
                self.connection.connect()
        self._used = now

    def pack(self, commands: list[tuple] | tuple[tuple, ...]) -> list[bytes]:
        """The commands in Redis's protocol, as redis-py would write them: by hiredis at once, where redis-py's
        serializer runs each argument through its encoder in Python first (a tenth of the link's own CPU on a
        request). Arguments are bytes, str, int or float; anything else is redis-py's ``DataError``."""
        if _hiredis_pack is None:
            return self.connection.pack_commands(commands)
        from redis.exceptions import DataError

        try:
            return [b"".join([_hiredis_pack(command) for command in commands])]
        except TypeError as exc:
            raise DataError(str(exc)) from None

    def call(self, *args: Any) -> Any:
        self._ready()
        self.connection.send_packed_command(self.pack((args,)), check_health=False)
        return self.connection.read_response()

    def many(self, commands: list[tuple]) -> list[Any]:
        """Commands in one round trip (a pipeline without a transaction); their replies in order."""
        if not commands:
            return []
        self._ready()
        self.connection.send_packed_command(self.pack(commands), check_health=False)
        try:
            return [self.connection.read_response() for _ in commands]
        except Exception:
            self.connection.disconnect()  # replies left unread: the connection cannot be used again
            raise

    def then(self, first: tuple, second: tuple) -> tuple[Any, Any]:
        """Two commands in one round trip, their replies in order. An error in reply to ``first`` raises at once,
        the connection closed, so that Redis drops ``second`` (a blocking command would otherwise hold the
        connection until its timeout)."""
        self._ready()
        self.connection.send_packed_command(self.pack((first, second)), check_health=False)
        try:
            return self.connection.read_response(), self.connection.read_response()
        except Exception:
            self.connection.disconnect()  # a reply left unread, or the second command still pending
            raise

    def blpop(self, keys: list[Any], timeout: float) -> tuple[bytes, bytes] | None:
        popped = self.call("BLPOP", *keys, timeout)
        return (popped[0], popped[1]) if popped else None

    def script(self, source: str, keys: list[Any], args: list[Any]) -> Any:
        """``EVALSHA`` of ``source``, loaded with ``EVAL`` when Redis does not know it (a restarted Redis)."""
        import hashlib

        from redis.exceptions import NoScriptError

        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        try:
            return self.call("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return self.call("EVAL", source, len(keys), *keys, *args)

    def close(self) -> None:
        self.connection.disconnect()


_links = threading.local()


def thread_link(url: str, *, socket_timeout: float | None = None) -> RedisLink:
    """This thread's link to ``url`` (made on first use, and again in a forked child, for another URL or after
    ``drop_thread_link``)."""
    link = getattr(_links, "link", None)
    if link is None or link.pid != os.getpid() or link.url != url:
        if link is not None:
            drop_thread_link()
        link = _links.link = RedisLink(url, socket_timeout=socket_timeout)
    return link


def drop_thread_link() -> None:
    """Close this thread's link (it failed, or a reply was left unread): the next use makes a new one."""
    link = getattr(_links, "link", None)
    _links.link = None
    if link is not None:
        with contextlib.suppress(Exception):  # closing a broken connection: nothing to do about it
            link.close()
