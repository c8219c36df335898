"""An online request and its answer on the wire, and the Redis keys they use.

A message is a compact JSON header, a newline, then each tensor's bytes end to end in the header's order (C order,
the dtype the header names). Tensors of strings travel as JSON lists inside the header instead (they are small and
rare). JSON escapes every control character inside strings and the header is written compact, so the first newline
ends it.

The header is written and read with orjson: a readable answer of a few hundred floats (an embedding) cost the
standard library's ``json`` about a tenth of a millisecond each way, on both sides of every online request. A float
that is not finite in the header (a readable answer of NaN: JSON has no spelling for it) travels as ``null``;
tensors travel as bytes, whatever their values. Reading falls back to ``json`` for a header orjson refuses (one
with ``NaN`` written by a process of the portal from before this change, during a rolling upgrade).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

PREFIX = "gpux:online:"


def queue_key(queue: str) -> str:
    """The Redis list online requests for ``queue`` (``inference.cpu``, ``inference.gpu``) wait in."""
    return f"{PREFIX}queue:{queue}"


def reply_key(request_id: str) -> str:
    """Where the answer to one request is pushed (the web process that sent it waits on it)."""
    return f"{PREFIX}reply:{request_id}"


def taken_key(request_id: str) -> str:
    """Which serving loop took a request off its queue (so that its caller can tell when that loop died)."""
    return f"{PREFIX}taken:{request_id}"


def alive_key(loop_name: str) -> str:
    """Present while the serving loop ``loop_name`` beats (a few seconds' expiry)."""
    return f"{PREFIX}alive:{loop_name}"


def loops_key(queue: str) -> str:
    """Sorted set of the loops serving ``queue``, scored by their last beat (epoch seconds)."""
    return f"{PREFIX}loops:{queue}"


def pack(header: dict[str, Any], arrays: dict[str, Any] | None = None) -> bytes:
    """``header`` plus ``arrays`` as one message."""
    tensors, strings, blobs = [], {}, []
    for name, value in (arrays or {}).items():
        if not isinstance(value, np.ndarray):
            continue
        if value.dtype.hasobject or value.dtype.kind in "US":
            strings[name] = {"shape": list(value.shape), "data": [_text(name, item) for item in value.ravel().tolist()]}
            continue
        data = np.ascontiguousarray(value)
        tensors.append([name, data.dtype.str, list(data.shape), data.nbytes])
        blobs.append(data.tobytes())
    described = {**header, "tensors": tensors}
    if strings:
        described["strings"] = strings
    return b"".join(
        [orjson.dumps(described, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY), b"\n", *blobs]
    )


def _text(name: str, item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, bytes):
        try:
            return item.decode()
        except UnicodeDecodeError:
            pass
    raise ValueError(f"Tensor {name!r} holds objects that are not text: {type(item).__name__}")


def unpack(message: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays of a message written by ``pack``. ``ValueError`` when the tensors' bytes do not add
    up to what the header says (a message cut short)."""
    head, _, body = message.partition(b"\n")
    header = load_header(head)
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    view = memoryview(body)
    for name, dtype, shape, size in header.pop("tensors", []):
        if offset + size > len(body):
            raise ValueError(f"tensor {name!r} is cut short: {len(body) - offset} of its {size} bytes")
        arrays[name] = np.frombuffer(view[offset : offset + size], dtype=np.dtype(dtype)).reshape(shape)
        offset += size
    if offset != len(body):
        raise ValueError(f"{len(body) - offset} bytes follow the last tensor")
    for name, described in (header.pop("strings", None) or {}).items():
        strings = np.empty(len(described["data"]), dtype=object)
        strings[:] = described["data"]
        arrays[name] = strings.reshape(described["shape"])
    return header, arrays


def load_header(head: bytes) -> dict[str, Any]:
    try:
        return orjson.loads(head)
    except orjson.JSONDecodeError:
        return json.loads(head)
