"""OPTIONS on any API view: what it is, what it renders and parses, and the fields POST and PUT take, in JSON.

DRF's ``SimpleMetadata`` asks every view with ``get_serializer`` for a serializer, and a view that takes no body
(leaving an organization, rotating a webhook secret) has none: it failed with a 500. Here a view without a
serializer for a method answers without that method's fields. The metadata is data, whatever the view renders for
GET: the content negotiation answers OPTIONS in JSON (the Swagger UI view renders only its page template, which
an OPTIONS answer cannot fill).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.metadata import SimpleMetadata
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import clone_request


def serializer_class_of(view: Any) -> type | None:
    """The view's serializer class for its current request, or None when it has none (DRF asserts then)."""
    try:
        return view.get_serializer_class()
    except AssertionError:
        return None


class ApiMetadata(SimpleMetadata):
    """``SimpleMetadata`` that copes with views without a serializer, and with lookups that refuse the caller."""

    def determine_actions(self, request, view) -> dict:
        actions = {}
        for method in sorted({"PUT", "POST"} & set(view.allowed_methods)):
            view.request = clone_request(request, method)
            try:
                view.check_permissions(view.request)
                if method == "PUT" and hasattr(view, "get_object"):
                    view.get_object()
                if serializer_class_of(view) is None:
                    continue
                serializer = view.get_serializer()
            except (exceptions.APIException, PermissionDenied, Http404, DjangoValidationError):
                continue  # the caller may not do it: the answer does not describe it
            finally:
                view.request = request
            actions[method] = self.get_serializer_info(serializer)
        return actions


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, except that OPTIONS always answers JSON (its answer is the metadata above), and what it
    chose for a request's ``Content-Type``, ``Accept`` and ``format`` is remembered per process.

    DRF parses every media type again on every request: the parser's and each renderer's against the request's
    headers (``_MediaType`` objects, precedence sorting): 5 % of ``GET /api/v1/user/``'s CPU in process, profiled
    (issue #15). Its choice depends only on those headers and on the view's parser or renderer classes, so it is
    kept under them: the same classes and headers choose the same parser, or the same renderer and media type. A
    choice that refuses (406, 404 for an unknown ``format``, 415) is not kept: DRF answers it each time. Client
    headers are input: at most ``CHOICES_KEPT`` choices of each kind are kept, headers longer than
    ``LONGEST_KEPT`` are never kept, and past that DRF negotiates each request as before."""

    CHOICES_KEPT = 256
    LONGEST_KEPT = 256
    _parsers_chosen: dict[tuple, int] = {}
    _renderers_chosen: dict[tuple, tuple[int, str]] = {}

    def select_parser(self, request, parsers):
        content_type = request.META.get("CONTENT_TYPE", "")
        if len(content_type) > self.LONGEST_KEPT:
            return super().select_parser(request, parsers)
        key = (content_type, *((type(parser), parser.media_type) for parser in parsers))
        chosen = self._parsers_chosen.get(key, False)
        if chosen is False:
            parser = super().select_parser(request, parsers)
            if parser is None:
                return None
            chosen = parsers.index(parser)
            if len(self._parsers_chosen) < self.CHOICES_KEPT:
                self._parsers_chosen[key] = chosen
        return parsers[chosen]

    def select_renderer(self, request, renderers, format_suffix=None):
        if request.method == "OPTIONS":
            return JSONRenderer(), JSONRenderer.media_type
        accept = request.META.get("HTTP_ACCEPT")
        format = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if (accept is not None and len(accept) > self.LONGEST_KEPT) or (format and len(format) > self.LONGEST_KEPT):
            return super().select_renderer(request, renderers, format_suffix)
        key = (accept, format, *((type(renderer), renderer.media_type, renderer.format) for renderer in renderers))
        chosen = self._renderers_chosen.get(key)
        if chosen is None:
            renderer, media_type = super().select_renderer(request, renderers, format_suffix)
            chosen = (renderers.index(renderer), media_type)
            if len(self._renderers_chosen) < self.CHOICES_KEPT:
                self._renderers_chosen[key] = chosen
        return renderers[chosen[0]], chosen[1]
