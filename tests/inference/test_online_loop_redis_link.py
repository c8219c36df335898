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


def test_answer_and_take_answers_gives_places_back_and_marks_what_it_takes(link, key):
    """The loop's one round trip after a batch (``ANSWER_AND_TAKE``): answers pushed with their expiry, places given
    back never below zero, the next requests taken and marked taken by the id at their header's start (a durable
    job's message is taken, not marked)."""
    from apps.inference.online import messages
    from apps.inference.online.loop import ANSWER_AND_TAKE

    queue, slot, tag = f"{key}:queue", f"{key}:slot", uuid.uuid4().hex
    online = messages.pack({"id": f"{tag}a", "version": 1})
    durable = messages.pack({"job": 7, "max": 1})
    link.many([("RPUSH", queue, online, durable), ("SET", slot, 1)])
    args = [5, "loop-1", 120, 60, f"{key}:taken:", f"{key}:reply:"]
    args += [f"{tag}x", b"answer x", slot, f"{tag}y", b"answer y", slot, f"{tag}z", b"answer z", ""]
    taken = link.script(ANSWER_AND_TAKE, [queue], args)
    assert taken == [online, durable]
    assert link.call("LRANGE", f"{key}:reply:{tag}x", 0, -1) == [b"answer x"]
    assert 0 < link.call("TTL", f"{key}:reply:{tag}z") <= 60
    assert link.call("GET", slot) == b"0"  # two given back from one: not below zero
    assert link.call("GET", f"{key}:taken:{tag}a") == b"loop-1"
    assert link.call("KEYS", f"{key}:taken:*") == [f"{key}:taken:{tag}a".encode()]
    link.call("DEL", queue, slot, *link.call("KEYS", f"{key}:*"))


def test_the_gateway_writes_the_request_id_first_in_its_header(settings):
    """What ``ANSWER_AND_TAKE`` relies on to mark a request taken: the gateway's header begins with its id."""
    from apps.inference.online import gateway

    class Full:
        def then(self, first, second):
            self.message = first[3 + first[2]]  # EVAL, the script, the number of keys, the keys, then ARGV[1]
            return [0, 0, 0], [second[1], gateway.REFUSED]  # the deployment is full: nothing more happens

    request = gateway.OnlineRequest(version_id=1, queue="inference.cpu")
    client = Full()
    with pytest.raises(gateway.DeploymentFull):
        gateway._admit_and_wait(request, client)
    assert client.message.startswith(b'{"id":"' + request.id.encode() + b'"')


def test_two_commands_in_one_round_trip_the_second_blocking(link, key):
    sends = []
    send = link.connection.send_packed_command
    link.connection.send_packed_command = lambda *a, **k: (sends.append(a), send(*a, **k))[1]
    assert link.then(("RPUSH", key, b"x"), ("BLPOP", key, 1)) == (1, [key.encode(), b"x"])
    assert link.then(("EXISTS", key), ("BLPOP", key, 0.05)) == (0, None)  # the second waited its timeout
    assert len(sends) == 2


def test_an_error_in_reply_to_the_first_drops_the_blocked_second(link, key):
    """Redis still runs the BLPOP behind a failed command: the link closes its connection, so Redis drops the
    BLPOP at once instead of holding it (and its reply) until its timeout, and the next command runs on a new one."""
    import redis

    link.call("SET", key, "text", "EX", 60)
    first = link.call("CLIENT", "ID")
    with pytest.raises(ResponseError):
        link.then(("INCR", key), ("BLPOP", f"{key}:never", 30))
    observer = redis.Redis.from_url(settings.REDIS_URL)
    assert first not in {int(entry["id"]) for entry in observer.client_list()}  # gone, its BLPOP with it
    assert link.call("GET", key) == b"text"
    link.call("DEL", key)


@pytest.mark.parametrize(
    "commands",
    [
        [("GET", "key")],
        [("EVAL", b"return 1" * 80, 3, "q", "", "reply:\u00e9", b"\x00\xff" * 300, 0, 12, 60.5, -7, 1e-07)],
        [("RPUSH", "k", b""), ("BLPOP", "k", 0.01), ("EXPIRE", "k", 60), ("SET", "n", 2**63 - 1)],
    ],
)
def test_the_link_writes_the_protocol_exactly_as_redis_py_does(link, commands):
    """The link packs with hiredis (C) instead of redis-py's per-argument encoder: the same bytes for every kind of
    argument the online path sends (bytes, text, integers, floats, empty strings)."""
    assert b"".join(link.pack(commands)) == b"".join(link.connection.pack_commands(commands))


@pytest.mark.parametrize("bad", [None, True, [1, 2], {"a": 1}])
def test_an_argument_redis_cannot_take_is_refused_before_anything_is_sent(link, key, bad):
    from redis.exceptions import DataError

    with pytest.raises(DataError):
        link.call("SET", key, bad)
    assert link.call("EXISTS", key) == 0  # nothing half-sent: the link goes on answering
