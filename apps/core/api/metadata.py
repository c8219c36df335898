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
    """DRF's negotiation, except that OPTIONS always answers JSON (its answer is the metadata above)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        if request.method == "OPTIONS":
            return JSONRenderer(), JSONRenderer.media_type
        return super().select_renderer(request, renderers, format_suffix)
