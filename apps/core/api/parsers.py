"""The API's JSON parser: DRF's, reading through apps.core.parsing so that every JSON route refuses, with a 400,

* a body nested deeper than ``INPUT_MAX_NESTING_DEPTH`` (before parsing: ``code`` ``nesting_too_deep``), and
* text holding a lone UTF-16 surrogate (``"\\ud83d"``), naming the field (``code`` ``invalid_text``),

instead of a RecursionError or a renderer that cannot encode its own error message (both were 500s). It is the
default parser (settings.REST_FRAMEWORK); a view that names its parsers takes this one for JSON (a test walks
every view to make sure).
"""

from __future__ import annotations

from rest_framework import exceptions, parsers
from rest_framework.utils import json as drf_json

from apps.core import parsing


class NestingTooDeep(exceptions.ParseError):
    default_code = "nesting_too_deep"


def invalid_text_error(exc: parsing.InvalidText) -> exceptions.ValidationError:
    """A lone surrogate as a 400 naming its field (``non_field_errors`` when the body itself is the string)."""
    return exceptions.ValidationError({exc.path or "non_field_errors": [exc.reason]}, code="invalid_text")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
            parse_constant = drf_json.strict_constant if self.strict else None
            return parsing.loads_json(text, parse_constant=parse_constant)
        except parsing.NestingTooDeep as exc:
            raise NestingTooDeep(f"JSON parse error - the body is {exc}.") from exc
        except parsing.InvalidText as exc:
            raise invalid_text_error(exc) from exc
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
