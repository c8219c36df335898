"""A Redis outage answers 503 with ``Retry-After``, never a 500 (issue #13, item 15).

The API's exception handler turns the broker's and Redis's connection errors into 503 ``queue_unavailable``;
this middleware does the same for everything else (pages, and any view outside DRF): a page says what happened
and when to try again, an ``/api/`` path gets the JSON error shape.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


class QueueUnavailableMiddleware:
    """Turns "the job queue / Redis does not answer" raised by a view into a 503 with ``Retry-After``."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from apps.core.api.errors import queue_unavailable_body
        from apps.core.job_services import broker_errors, retry_after_seconds

        if not isinstance(exception, broker_errors()):
            return None
        logger.warning("Redis did not answer for %s %s: %s", request.method, request.path, exception)
        body = queue_unavailable_body(exception)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(body, status=503)
        else:
            page = render_to_string("core/queue_unavailable.html", {"detail": body["detail"]}, request=request)
            response = HttpResponse(page, status=503)
        response["Retry-After"] = str(retry_after_seconds())
        return response
