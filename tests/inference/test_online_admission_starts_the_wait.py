"""The online path's admission and the first slice of its wait share one round trip to Redis
(``gateway._admit_and_wait``, ``RedisLink.then``), against the real Redis of the tests: an answered request costs
one round trip; a refused one (a rate limit, a full deployment) is answered at once, pushes nothing and leaves no
key behind; a Redis that forgot its scripts still admits."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from django.conf import settings

from apps.analytics import quotas
from apps.core.api.throttling import Window
from apps.inference.online import gateway, messages
from apps.inference.online.link import RedisLink


@pytest.fixture
def link():
    link = RedisLink(settings.REDIS_URL)
    sent = []
    send = link.connection.send_packed_command
    link.connection.send_packed_command = lambda *args, **kwargs: (sent.append(args), send(*args, **kwargs))[1]
    link.sent = sent
    yield link
    link.close()


@pytest.fixture
def queue():
    name = f"test-admission-{uuid.uuid4().hex[:8]}"
    yield name
    RedisLink(settings.REDIS_URL).call("DEL", messages.queue_key(name))


def _request(queue: str, **kwargs) -> gateway.OnlineRequest:
    return gateway.OnlineRequest(version_id=1, queue=queue, timeout=5.0, **kwargs)


def test_an_answered_request_costs_one_round_trip(link, queue):
    request = _request(queue)
    # a serving loop that answered before the request was even sent: the BLPOP behind the admission takes it
    link.call("RPUSH", messages.reply_key(request.id), messages.pack({"status": "succeeded", "id": request.id}))
    reply = gateway._admit_and_wait(request, link)
    assert reply.succeeded and reply.header["id"] == request.id
    assert request.admitted and request.sent
    assert len(link.sent) == 2  # the RPUSH above, then one round trip for the admission, the push and the wait
    queued = link.call("LRANGE", messages.queue_key(queue), 0, -1)
    assert len(queued) == 1 and messages.unpack(queued[0])[0]["id"] == request.id


def test_an_answer_that_comes_later_is_waited_for_in_slices(link, queue, monkeypatch):
    import threading

    monkeypatch.setattr(gateway, "SLICE_SECONDS", 0.05)
    request = _request(queue)
    answerer = RedisLink(settings.REDIS_URL)
    timer = threading.Timer(
        0.3, lambda: answerer.call("RPUSH", messages.reply_key(request.id), messages.pack({"status": "succeeded"}))
    )
    timer.start()
    try:
        assert gateway._admit_and_wait(request, link).succeeded
    finally:
        timer.join()
        answerer.close()
    assert len(link.sent) > 2  # the first slice went with the admission, the next on their own


def test_a_full_deployment_is_answered_at_once_and_pushes_nothing(link, queue):
    slot_key = f"gpux:test:slot:{uuid.uuid4().hex}"
    link.call("SET", slot_key, 2, "EX", 60)
    request = _request(queue, slot=gateway.Slot(slot_key, 2, 60))
    before = len(link.sent)
    with pytest.raises(gateway.DeploymentFull):
        gateway._admit_and_wait(request, link)
    # the admission's round trip: its BLPOP took the refusal, it did not wait a slice
    assert len(link.sent) - before == 1
    assert request.admitted and not request.sent
    assert link.call("LLEN", messages.queue_key(queue)) == 0
    assert link.call("GET", slot_key) == b"2"  # not counted
    assert link.call("EXISTS", messages.reply_key(request.id)) == 0  # the refusal was taken: nothing left behind
    assert link.call("PING") in (b"PONG", "PONG", True)  # the connection is in step: no reply left unread
    link.call("DEL", slot_key)


def test_a_rate_limit_is_answered_at_once_with_its_window(link, queue):
    first = Window(key=f"gpux:test:window:{uuid.uuid4().hex}", limit=100, expires=60, retry_in=1.0)
    second = Window(key=f"gpux:test:window:{uuid.uuid4().hex}", limit=1, expires=60, retry_in=7.5)
    link.call("SET", second.key, 1, "EX", 60)
    request = _request(queue, throttles=[first, second])
    before = len(link.sent)
    with pytest.raises(gateway.RateLimited) as refused:
        gateway._admit_and_wait(request, link)
    assert refused.value.wait == 7.5  # the second window refused
    assert len(link.sent) - before == 1
    assert link.call("LLEN", messages.queue_key(queue)) == 0
    assert link.call("EXISTS", messages.reply_key(request.id)) == 0
    link.call("DEL", first.key, second.key)


def test_a_redis_that_forgot_its_scripts_still_admits(link, queue):
    link.call("SCRIPT", "FLUSH")
    request = _request(queue)
    link.call("RPUSH", messages.reply_key(request.id), messages.pack({"status": "succeeded"}))
    assert gateway._admit_and_wait(request, link).succeeded
    assert len(link.sent) == 3  # the flush, the answer pushed, and one round trip: no NOSCRIPT, no second try


def _windows(*limits: int) -> quotas.RateWindows:
    tag = uuid.uuid4().hex
    keys = tuple(f"{quotas.RATE_PREFIX}predict:test-{tag}:{index}" for index in range(len(limits)))
    names = tuple(f"window {index}" for index in range(len(limits)))
    quota_names = tuple(("predictions_per_minute", "token_predictions_per_minute")[: len(limits)])
    return quotas.RateWindows("predict", keys, tuple(limits), names, quota_names, uuid.uuid4().hex)


def test_the_per_minute_quotas_are_counted_in_the_admissions_round_trip(link, queue):
    """The organization's and the token's prediction windows (apps/analytics/quotas.py) are checked and counted in
    the round trip that sends the request, not in one of their own before it: a request sent is in both windows, a
    full window refuses with its index and the wait until its oldest request leaves, and counts nothing anywhere."""
    windows = _windows(2, 5)
    for _ in range(2):
        request = _request(queue, quota=windows)
        link.call("RPUSH", messages.reply_key(request.id), messages.pack({"status": "succeeded"}))
        before = len(link.sent)
        assert gateway._admit_and_wait(request, link).succeeded
        assert len(link.sent) - before == 1  # no round trip of the quota's own
        windows = dataclasses.replace(windows, member=uuid.uuid4().hex)  # each request is its own member
    assert [link.call("ZCARD", key) for key in windows.keys] == [2, 2]
    refused = _request(queue, quota=windows)
    with pytest.raises(gateway.QuotaFull) as full:
        gateway._admit_and_wait(refused, link)
    assert full.value.index == 1 and 0 < full.value.wait <= 60  # the organization's window, a minute at most
    answer = windows.refusal(full.value.index, full.value.wait)
    assert answer.status_code == 429 and answer.quota == "predictions_per_minute"
    assert "window 0 may make 2 predictions per minute" in str(answer.detail)
    assert [link.call("ZCARD", key) for key in windows.keys] == [2, 2]  # the refused one counted nowhere
    assert link.call("LLEN", messages.queue_key(queue)) == 2  # the two sent, not the refused one
    assert link.call("EXISTS", messages.reply_key(refused.id)) == 0
    link.call("DEL", *windows.keys)


def test_a_request_refused_by_a_throttle_or_a_full_deployment_is_not_counted_in_its_quotas(link, queue):
    windows = _windows(10)
    throttle = Window(key=f"gpux:test:window:{uuid.uuid4().hex}", limit=0, expires=60, retry_in=3.0)
    with pytest.raises(gateway.RateLimited):
        gateway._admit_and_wait(_request(queue, quota=windows, throttles=[throttle]), link)
    slot_key = f"gpux:test:slot:{uuid.uuid4().hex}"
    link.call("SET", slot_key, 1, "EX", 60)
    with pytest.raises(gateway.DeploymentFull):
        gateway._admit_and_wait(_request(queue, quota=windows, slot=gateway.Slot(slot_key, 1, 60)), link)
    assert link.call("ZCARD", windows.keys[0]) == 0
    assert link.call("LLEN", messages.queue_key(queue)) == 0
    link.call("DEL", throttle.key, slot_key)
