"""The serving loop's own Redis connection (apps/inference/online/loop.py, ``RedisLink``): commands and their
replies on one connection, without redis-py's pool and retry layers, against the real Redis of the tests."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from redis.exceptions import ResponseError

from apps.inference.online.link import RedisLink


@pytest.fixture
def link():
    link = RedisLink(settings.REDIS_URL)
    yield link
    link.close()


@pytest.fixture
def key():
    return f"gpux:test:link:{uuid.uuid4().hex}"


def test_commands_pipelines_and_blocking_pops(link, key):
    assert link.many([("RPUSH", key, b"a", b"b", b"c"), ("EXPIRE", key, 60)]) == [3, 1]
    assert link.blpop([key], 0.1) == (key.encode(), b"a")
    assert link.call("LPOP", key, 5) == [b"b", b"c"]
    assert link.blpop([key], 0.05) is None  # nothing came within the timeout
    assert link.many([]) == []


def test_an_error_reply_raises_and_the_link_is_not_reused_half_read(link, key):
    link.call("SET", key, "text", "EX", 60)
    with pytest.raises(ResponseError):
        link.many([("INCR", key), ("GET", key)])
    assert link.call("GET", key) == b"text"  # it reconnected by itself: nothing unread came back


def test_a_script_is_loaded_again_after_redis_forgot_it(link, key):
    source = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    assert link.script(source, [key], [2]) == 2
    link.call("SCRIPT", "FLUSH")
    assert link.script(source, [key], [3]) == 5
    link.call("DEL", key)


def test_a_link_idle_across_a_redis_restart_connects_again_before_its_next_command(link, key, monkeypatch):
    """The connection dropped under the link (as a restarted Redis drops it), the link idle past its check: the
    next command goes through on a new connection, sent once."""
    import socket

    from apps.inference.online import link as links

    link.connection._sock.shutdown(socket.SHUT_RDWR)  # the server side is gone
    monkeypatch.setattr(links, "IDLE_CHECK_SECONDS", 0.0)
    assert link.call("INCR", key) == 1
    assert link.call("GET", key) == b"1"
    link.call("DEL", key)
