from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.audit.context import context_from_request, current_request


class AuditContextMiddleware:
    """Makes the request's IP and user agent available to ``record_event`` without passing the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(context_from_request(request))
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)
