"""The API's fast JSON renderer: DRF's ``JSONRenderer`` output, encoded by orjson where it can.

DRF encodes with the standard library's ``json`` and its own encoder class, a Python call per value: a prediction's
answer of a few hundred floats cost a tenth of a millisecond and more to render, on the path whose milliseconds
issue #15 counts. orjson writes the same JSON (compact, UTF-8, dict keys in their order, floats in their shortest
round-trip spelling, times in ISO 8601 with ``Z`` for UTC as DRF writes them) in a fraction of that. Anything it does
not take as it is (a lazy translation, a ``Decimal``, a ``timedelta``, a generator, ...), and any request for an
indented answer (``Accept: application/json; indent=2``), goes to DRF's renderer unchanged, so the answer is the
same either way. One difference on purpose: a float that is not finite (NaN, infinities), which JSON cannot spell
and DRF's strict renderer refuses with a 500, is written as ``null``.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework import renderers

OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is None:
            try:
                encoded = orjson.dumps(data, option=OPTIONS)
            except orjson.JSONEncodeError:
                pass  # a value orjson does not take: DRF's own encoder
            else:
                # As DRF does: U+2028 and U+2029 escaped, so that the answer is also a strict subset of JavaScript.
                if b"\xe2\x80\xa8" in encoded or b"\xe2\x80\xa9" in encoded:
                    encoded = encoded.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
                return encoded
        return super().render(data, accepted_media_type, renderer_context)
