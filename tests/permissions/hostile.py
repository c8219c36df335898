"""Three shapes of hostile input the bad-input pass sends to every route (tests/permissions/test_bad_input_*.py).

* ``OPTIONS`` on the route's URL;
* nesting far past the stated limit (docs/api/errors.md): the body itself, and every text field of the route's own
  body holding nested JSON text (also YAML flow text: a gpux.yml, a JSON field of a form, a row of a batch file);
* a lone UTF-16 surrogate: ``"\\ud83d"`` written as a JSON escape in every text field of the route's own body, and
  the same escape inside text fields that are themselves parsed (JSON or YAML), the query string with the
  surrogate's UTF-8 bytes (``%ED%A0%BD``).

Files of a multipart body (a batch file, an upload) are replaced by files holding the same hostile lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile

DEPTH = 5000  # far past the limit, deep enough to exhaust Python's recursion in any recursive parser
DEEP_JSON = '{"a": ' + "[" * DEPTH + "]" * DEPTH + "}"
DEEP_FLOW = "[" * DEPTH + "]" * DEPTH  # JSON text, and YAML flow text
LONE_SURROGATE = "\ud83d"
LONE_SURROGATE_ESCAPED = '"\\ud83d"'  # JSON (and YAML double-quoted) text that parses into a lone surrogate
SURROGATE_BYTES_IN_URL = "%ED%A0%BD"  # the surrogate's (invalid) UTF-8 encoding, percent-escaped


@dataclass(frozen=True)
class Shape:
    """One hostile request body: ``text`` sent as ``content_type``, or ``form`` data (multipart when it has files)."""

    label: str
    text: str | None = None
    content_type: str = "application/json"
    form: dict | None = None


def replace_text(value: Any, text: str) -> Any:
    """``value`` with every string (and every file) replaced by ``text``; the structure kept."""
    if isinstance(value, dict):
        return {key: replace_text(item, text) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [replace_text(item, text) for item in value]
    if isinstance(value, str | File):
        return text
    return value


def has_text(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_text(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(has_text(item) for item in value)
    return isinstance(value, str | File)


def has_file(body: Any) -> bool:
    return isinstance(body, dict) and any(isinstance(value, File) for value in body.values())


def _with_files_of(body: dict, lines: str) -> dict:
    """A multipart body whose files hold ``lines`` (a hostile batch file), its other fields as they were."""
    return {
        key: SimpleUploadedFile(getattr(value, "name", None) or "rows.jsonl", lines.encode())
        if isinstance(value, File)
        else value
        for key, value in body.items()
    }


def api_shapes(body: Any) -> Iterator[Shape]:
    """The hostile bodies for an API route whose ordinary body is ``body`` (None, a dict, bytes, or with files)."""
    yield Shape("nested past the limit", DEEP_JSON)
    fields = body if isinstance(body, dict) and has_text(body) else {"name": "x"}
    yield Shape("a lone surrogate in every text field", json.dumps(replace_text(fields, LONE_SURROGATE)))
    yield Shape("nested JSON text in every text field", json.dumps(replace_text(fields, DEEP_FLOW)))
    yield Shape("a surrogate escape in every text field", json.dumps(replace_text(fields, LONE_SURROGATE_ESCAPED)))
    if has_file(body):
        yield Shape("a file of deeply nested rows", form=_with_files_of(body, DEEP_JSON + "\n"))
        yield Shape("a file of rows with a lone surrogate", form=_with_files_of(body, '{"x": "\\ud83d"}\n'))


def page_shapes(body: Any) -> Iterator[Shape]:
    """The hostile form posts for a page whose ordinary form is ``body``: what a browser can send."""
    fields = body if isinstance(body, dict) and has_text(body) else {"name": "x"}
    yield Shape("nested JSON text in every field", form=replace_text(fields, DEEP_FLOW))
    yield Shape("a surrogate escape in every field", form=replace_text(fields, LONE_SURROGATE_ESCAPED))
    encoded = "&".join(f"{key}={SURROGATE_BYTES_IN_URL}" for key in fields)
    yield Shape("the surrogate's bytes in every field", encoded, "application/x-www-form-urlencoded")
    if has_file(body):
        yield Shape("a file of deeply nested rows", form=_with_files_of(body, DEEP_JSON + "\n"))
        yield Shape("a file of rows with a lone surrogate", form=_with_files_of(body, '{"x": "\\ud83d"}\n'))


def hostile_query(query: dict) -> str:
    """The route's query string with the surrogate's bytes in each value and in a ``search`` parameter."""
    keys = [*query, "search"] if "search" not in query else list(query)
    return "?" + "&".join(f"{key}={SURROGATE_BYTES_IN_URL}" for key in keys)
