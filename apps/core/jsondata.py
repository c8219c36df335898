"""JSON for what the portal stores and sends between its processes: job results, prediction answers, the messages
that tell a waiting request its job finished.

The standard library's ``json`` writes a float through a Python call each: an embedding of 384 floats cost it about
0.16 ms, and a durable prediction's answer was written up to three times (its job's result, a copy in its inference
row since dropped, the message to a waiting caller), on the path whose milliseconds issue #15 counts. orjson writes
the same JSON in a twentieth of that. What orjson does not take as it is goes through Django's ``DjangoJSONEncoder``
as before (dates and times, in the encoder's own spelling; ``Decimal``, lazy translations, ``timedelta``), and a value
orjson refuses outright (an integer past 64 bits) is written by ``json`` with that encoder, so the output means the
same either way.

One difference on purpose: a float that is not finite (NaN, infinities: a model can answer them) is written as
``null``. ``json`` wrote ``NaN``, which PostgreSQL's ``jsonb`` refuses, so the whole batch's outcomes failed to record.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.core.serializers.json import DjangoJSONEncoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_ENCODER = DjangoJSONEncoder()


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON (UTF-8). Raises ``TypeError`` for a value that is not JSON, as ``json`` does."""
    try:
        return orjson.dumps(value, default=_ENCODER.default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        if isinstance(exc.__cause__, TypeError) or "not JSON serializable" in str(exc):
            raise TypeError(str(exc)) from None
        # orjson refuses a few values ``json`` writes (integers past 64 bits): the standard library's way.
        return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"), allow_nan=False).encode()


def dumps_text(value: Any) -> str:
    """``dumps`` as a ``str`` (a statement's parameter)."""
    return dumps(value).decode()


def normalized(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples as lists, dates as text...); ``TypeError`` if it is not JSON."""
    return orjson.loads(dumps(value))
