"""Every API view that parses JSON does it with apps.core.api.parsers.JSONParser (nesting bounded, text checked):
a view that names its own parsers and picks DRF's JSONParser would bring back the 500s of deep JSON and lone
surrogates. The walk covers every URL pattern of the project."""

from __future__ import annotations

from rest_framework.parsers import JSONParser as DrfJSONParser

from apps.core.api.parsers import JSONParser
from tests.permissions.test_every_route_is_in_a_matrix import all_patterns


def view_class_of(pattern_callback):
    return getattr(pattern_callback, "view_class", None) or getattr(pattern_callback, "cls", None)


def test_every_view_that_parses_json_uses_the_bounded_parser():
    from django.urls import URLPattern, URLResolver, get_resolver

    views = []

    def walk(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns)
            elif isinstance(entry, URLPattern):
                view = view_class_of(entry.callback)
                if view is not None and hasattr(view, "parser_classes"):
                    views.append(view)

    walk(get_resolver().url_patterns)
    assert len(views) > 50 and len(all_patterns()) > 100
    wrong = sorted(
        {
            f"{view.__module__}.{view.__qualname__}"
            for view in views
            for parser in view.parser_classes
            if issubclass(parser, DrfJSONParser) and not issubclass(parser, JSONParser)
        }
    )
    assert not wrong, f"views parsing JSON with DRF's unbounded parser: {wrong}"
