"""A serving loop pushes a batch's answers before it records the batch's metrics (``ServingLoop.serve``): the caller's
wait does not include Prometheus's bookkeeping, and each latency observation still ends when the run ended. Run in
this process against the real Redis of the tests, with a real ONNX model; nothing is mocked but the metric
recorder, which is wrapped to look at Redis when it is called."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from django.conf import settings

from apps.inference.online import loop as loops
from apps.inference.online import messages
from apps.inference.online.link import RedisLink

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def same_connection(monkeypatch):
    """The loop closes stale database connections before it reads a version; here that is the test's own, inside
    its transaction, which must stay open."""
    monkeypatch.setattr("django.db.close_old_connections", lambda **_kwargs: None)


@pytest.fixture
def link():
    link = RedisLink(settings.REDIS_URL)
    yield link
    link.close()


def _request(version_id: int, request_id: str, sent: float) -> bytes:
    header = {
        "id": request_id,
        "version": version_id,
        "deadline": time.time() + 30,
        "max": 1,
        "delay_ms": 0,
        "provider": "auto",
        "time_limit": 30.0,
        "deployment": None,
        "sent": sent,
    }
    return messages.pack(header, {"float_input": np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)})


def test_the_answers_are_pushed_before_the_metrics_are_recorded(runnable, tmp_path, link, monkeypatch):
    version = runnable.iris(tmp_path)
    queue = f"gpux:test:answers-first:{uuid.uuid4().hex}"
    ids = [uuid.uuid4().hex, uuid.uuid4().hex]
    sent = time.time()
    seen: list[tuple[list[int], float, float]] = []
    observe = loops._observe_success

    def watching(chunk, provider, total, ended):
        waiting = [int(link.call("LLEN", messages.reply_key(item.id))) for item in chunk]
        seen.append((waiting, ended, time.time()))
        observe(chunk, provider, total, ended)

    monkeypatch.setattr(loops, "_observe_success", watching)
    serving = loops.ServingLoop([queue])
    serving._key = queue
    serving.serve(link, [_request(version.pk, request_id, sent) for request_id in ids])

    assert len(seen) == 2  # one run per request: a version route's batches hold one
    for waiting, ended, recorded in seen:
        assert waiting == [1]  # its answer was already on its reply key
        assert sent <= ended <= recorded
    for request_id in ids:
        header, _outputs = messages.unpack(link.call("LPOP", messages.reply_key(request_id)))
        assert header["status"] == "succeeded"
    assert serving._observations == []


def test_a_batch_whose_push_fails_still_records_its_metrics_once(runnable, tmp_path, link, monkeypatch):
    """Redis gone at the moment of the answers: the loop's caller reconnects (``_serve_forever``); the runs that
    happened are still counted, once."""
    version = runnable.iris(tmp_path)
    recorded: list[int] = []
    monkeypatch.setattr(loops, "_observe_success", lambda chunk, provider, total, ended: recorded.append(total))

    def refused(*_args, **_kwargs):
        raise ConnectionError("Redis went away")

    serving = loops.ServingLoop(["gpux:test:answers-first:gone"])
    monkeypatch.setattr(serving, "_push", refused)
    with pytest.raises(ConnectionError):
        serving.serve(link, [_request(version.pk, uuid.uuid4().hex, time.time())])
    assert recorded == [1]
    assert serving._observations == []
