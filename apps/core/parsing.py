"""Reading untrusted JSON and YAML: nesting bounded before anything recursive runs, and text that is Unicode.

Python's ``json`` and PyYAML's composer recurse once per level of nesting: a body of 5,000 ``[`` exhausted the
interpreter's recursion (a 500), and deep values would break whatever walks them next (serializers, renderers).
So nesting is measured first, without recursion, and anything deeper than ``settings.INPUT_MAX_NESTING_DEPTH``
(64 levels of arrays and objects, documented in docs/api/errors.md) is refused before it is parsed.

JSON's ``\\ud83d`` escape decodes into a lone UTF-16 surrogate, a Python string that no Unicode encoding can
write: an error message repeating such a value made the JSON renderer fail after the view had answered (a bare
500), and PostgreSQL refuses it. Parsed text is checked once, here, and refused with the path of the field.

Everything that reads JSON or YAML from outside (request bodies through the API's parser, page form fields,
batch files, KServe headers, remote registries' answers, gpux.yml) goes through ``loads_json`` or
``DepthLimitedSafeLoader``, so every route gets the same limits.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import yaml
from django.conf import settings

DEFAULT_MAX_NESTING_DEPTH = 64
# A string in valid JSON: quote, then anything but a quote or a backslash, or an escape, up to the closing quote.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class NestingTooDeep(ValueError):
    """A document nested deeper than the limit; refused before parsing."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels of arrays and objects, the limit; send a flatter document")
        self.limit = limit


class InvalidText(ValueError):
    """Parsed text holding a lone UTF-16 surrogate; ``path`` names where (``""``: the document itself)."""

    def __init__(self, path: str) -> None:
        where = f"{path}: " if path else ""
        super().__init__(
            f"{where}holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair), which is not "
            "Unicode text; send the character itself or its complete surrogate pair"
        )
        self.path = path
        self.reason = str(self)[len(where) :]

    def under(self, name: str) -> str:
        """The path inside a value that itself sits at ``name``: ``float_input[0][1]``, ``params.labels``."""
        if not self.path:
            return name
        return f"{name}{self.path}" if self.path.startswith("[") else f"{name}.{self.path}"


def max_nesting_depth() -> int:
    """The limit of the portal's settings; the default outside Django (a registry plugin's own tests)."""
    if not settings.configured:
        return DEFAULT_MAX_NESTING_DEPTH
    return getattr(settings, "INPUT_MAX_NESTING_DEPTH", DEFAULT_MAX_NESTING_DEPTH)


def json_nesting_exceeds(text: str, limit: int) -> bool:
    """Whether JSON ``text`` opens more than ``limit`` arrays/objects inside one another (brackets in strings do not
    count). No recursion; linear time. Malformed text may be judged on its brackets alone: it is refused either way."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot be deeper than the number of brackets it opens
    if '"' in text:
        text = _JSON_STRING.sub("", text)
    import numpy as np  # a dependency of the portal (inference): vectorized, for bodies of many megabytes

    steps = _bracket_steps()[np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)]
    return bool(np.cumsum(steps[steps != 0], dtype=np.int64).max(initial=0) > limit)


@cache
def _bracket_steps():
    """Byte → change of depth: +1 for ``[`` and ``{``, -1 for ``]`` and ``}``, 0 for the rest."""
    import numpy as np

    steps = np.zeros(256, dtype=np.int8)
    steps[[ord("["), ord("{")]] = 1
    steps[[ord("]"), ord("}")]] = -1
    return steps


def lone_surrogate_at(data: Any) -> str | None:
    """The path of the first string (value or key) in ``data`` that holds a lone surrogate, else None.

    Paths read as the API names fields: ``scope``, ``inputs.text[0]``; ``""`` when ``data`` itself is the string.
    Iterative: ``data`` may be as deep as the nesting limit allows.
    """
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not _encodes(value):
                return path
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                key_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not _encodes(key):
                    return f"{path} (a key)" if path else "(a key)"
                stack.append((key_path, item))
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(value))))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(data: Any) -> None:
    """Raise InvalidText when a string in ``data`` (already parsed, e.g. YAML) holds a lone surrogate."""
    path = lone_surrogate_at(data)
    if path is not None:
        raise InvalidText(path)


def loads_json(data: str | bytes | bytearray, *, max_depth: int | None = None, **kwargs: Any) -> Any:
    """``json.loads`` of untrusted JSON: NestingTooDeep past the limit (before parsing), InvalidText for a lone
    surrogate, and ``ValueError`` (JSONDecodeError, UnicodeDecodeError) for the rest; all are ValueErrors."""
    if isinstance(data, bytes | bytearray):
        data = bytes(data).decode(json.detect_encoding(data))
    limit = max_nesting_depth() if max_depth is None else max_depth
    if json_nesting_exceeds(data, limit):
        raise NestingTooDeep(limit)
    parsed = json.loads(data, **kwargs)
    if "\\" in data and _SURROGATE_ESCAPE.search(data):  # only escapes make surrogates: decoded text has none
        check_text(parsed)
    return parsed


class DepthLimitedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses sequences and mappings nested deeper than the limit while composing (the
    composer recurses per level; the scanner, parser and constructor do not), and refuses anchors and aliases (a
    "billion laughs" document expands them without end)."""

    max_depth: int | None = None  # None: settings.INPUT_MAX_NESTING_DEPTH

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (*name) are not allowed", mark)
        opens = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        depth = getattr(self, "_nesting", 0) + (1 if opens else 0)
        limit = self.max_depth if self.max_depth is not None else max_nesting_depth()
        if depth > limit:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {limit} levels of lists and mappings (the limit is {limit})",
                self.peek_event().start_mark,
            )  # fmt: skip
        self._nesting = depth
        try:
            return super().compose_node(parent, index)
        finally:
            self._nesting = depth - (1 if opens else 0)


def load_yaml(text: str) -> Any:
    """One YAML document through ``DepthLimitedSafeLoader``, its text checked: yaml.YAMLError or InvalidText."""
    data = yaml.load(text, Loader=DepthLimitedSafeLoader)  # noqa: S506 - a SafeLoader subclass
    check_text(data)
    return data
