"""An online request and its answer on the wire (apps/inference/online/messages.py): the header in orjson, tensors as
bytes, and headers written by ``json`` (a process from before orjson, during a rolling upgrade) still read."""

from __future__ import annotations

import json

import numpy as np

from apps.inference.online import messages


def test_a_message_round_trips_its_header_and_tensors():
    arrays = {
        "input_ids": np.arange(64, dtype=np.int64).reshape(2, 32),
        "mask": np.ones((2, 32), dtype=np.int8),
        "text": np.array(["a\nb", "ü"], dtype=object),
    }
    header = {"id": "x" * 32, "answer": {"embedding": [0.25, -1.5e-7], "labels": {0: "setosa"}}, "max": np.int64(8)}
    message = messages.pack(header, arrays)
    assert message.count(b"\n") >= 1 and b"\n" not in message.partition(b"\n")[0]
    read, tensors = messages.unpack(message)
    assert read["id"] == "x" * 32 and read["max"] == 8
    assert read["answer"] == {"embedding": [0.25, -1.5e-7], "labels": {"0": "setosa"}}  # keys as JSON has them
    assert tensors["input_ids"].dtype == np.int64 and (tensors["input_ids"] == arrays["input_ids"]).all()
    assert tensors["mask"].dtype == np.int8 and tensors["mask"].shape == (2, 32)
    assert list(tensors["text"]) == ["a\nb", "ü"]


def test_a_non_finite_float_in_the_header_travels_as_null():
    read, _ = messages.unpack(messages.pack({"answer": [1.0, float("nan"), float("inf")]}))
    assert read["answer"] == [1.0, None, None]


def test_a_header_written_by_json_with_nan_is_still_read():
    head = json.dumps({"id": "old", "answer": [float("nan")], "tensors": []}).encode()
    read, tensors = messages.unpack(head + b"\n")
    assert read["id"] == "old" and np.isnan(read["answer"][0]) and tensors == {}
