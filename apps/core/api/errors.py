"""DRF's error shape (``{"field": ["message"]}``, ``detail`` for the rest) plus stable codes.

Every error body carries ``code``: ``validation_error`` with per-field ``codes`` for 400s, else the
exception's own code (``not_found``, ``permission_denied``, ``token_expired``...). Django's own
ValidationError and IntegrityError-free service errors raised in views become 400s, not 500s. The job queue
(Redis) not answering becomes 503 ``queue_unavailable`` with ``Retry-After``, naming the job already written.

Errors Django answers before or after any API view (a URL no pattern matches, such as a detail URL whose UUID is
not one; a bad Host header; an unexpected exception) have the same shape under ``/api/``: the
``handler*`` views below, named in gpux_portal/urls.py. Elsewhere they answer the portal's error pages
(templates/400.html, 403.html, 404.html, 500.html: inside the layout, saying who may do what, with a way back). With
``DEBUG=true`` (off unless set), Django shows its technical 404 and 500 pages instead, for developers.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

API_PREFIX = "/api/"


def as_drf_validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        detail = {
            field: [exceptions.ErrorDetail(str(m), code=e.code or "invalid") for e in errors for m in e.messages]
            for field, errors in exc.error_dict.items()
        }
        if "__all__" in detail:
            detail["non_field_errors"] = detail.pop("__all__")
    else:
        detail = {"non_field_errors": [exceptions.ErrorDetail(m, code=exc.code or "invalid") for m in exc.messages]}
    return exceptions.ValidationError(detail)


def queue_unavailable_body(exc: BaseException) -> dict:
    """The 503 body when the job queue (Redis) does not answer; it names the job already written, if any, so that
    the client follows it instead of starting another."""
    from django.urls import reverse

    from apps.core.job_services import retry_after_seconds

    job = getattr(exc, "job", None)
    wait = retry_after_seconds()
    if job is None:
        detail = f"The job queue does not answer at the moment; nothing was started. Try again in {wait} s."
        return {"detail": detail, "code": "queue_unavailable"}
    url = reverse("api:job-detail", kwargs={"uuid": job.uuid})
    detail = (
        "The job queue does not answer at the moment. The job was saved and starts once the queue is back: "
        f"follow it at {url} rather than starting it again."
    )
    return {"detail": detail, "code": "queue_unavailable", "job": str(job.uuid), "job_url": url}


def queue_unavailable_response(exc: BaseException) -> Response:
    from apps.core.job_services import retry_after_seconds

    return Response(
        queue_unavailable_body(exc),
        status=503,
        headers={"Retry-After": str(retry_after_seconds())},
    )


def exception_handler(exc, context):
    from apps.core.job_services import broker_errors

    if isinstance(exc, broker_errors()):
        # Redis (the broker, the result channel) does not answer: the client may try again, never a 500.
        return queue_unavailable_response(exc)
    if isinstance(exc, DjangoValidationError):
        exc = as_drf_validation_error(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None, code=getattr(exc, "code", None))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    if isinstance(getattr(request, "accepted_renderer", None), TemplateHTMLRenderer):
        # A view that renders only a page (the Swagger UI, Redoc): its errors are the API's, in JSON.
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
    if isinstance(exc, exceptions.ValidationError):
        data = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        codes = exc.get_codes()
        response.data = {
            **data,
            "code": "validation_error",
            "codes": codes if isinstance(codes, dict) else {"non_field_errors": codes},
        }
    elif isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data["code"] = getattr(detail, "code", None) or exc.default_code
        if getattr(exc, "quota", ""):  # a refusal by a quota names it (apps.analytics.quotas.QuotaExceeded)
            response.data["quota"] = exc.quota
    return response


# --- Django's error views, in the API's shape under /api/ ---------------------------------------------------------
def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def api_error(status: int, exc: exceptions.APIException) -> JsonResponse:
    return JsonResponse({"detail": str(exc.detail), "code": exc.default_code}, status=status)


class BadRequest(exceptions.APIException):
    status_code = 400
    default_code = "bad_request"
    default_detail = "The request is malformed (for example its Host header is not one this portal serves)."


class ServerError(exceptions.APIException):
    default_code = "server_error"
    default_detail = "A server error occurred; it was logged. Try again later, or tell the operator."


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return api_error(400, BadRequest())
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return api_error(403, exceptions.PermissionDenied())
    return defaults.permission_denied(request, exception)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return api_error(404, exceptions.NotFound())
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return api_error(500, ServerError())
    return defaults.server_error(request)
