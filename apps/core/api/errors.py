"""DRF's error shape (``{"field": ["message"]}``, ``detail`` for the rest) plus stable codes.

Every error body carries ``code``: ``validation_error`` with per-field ``codes`` for 400s, else the
exception's own code (``not_found``, ``permission_denied``, ``token_expired``...). Django's own
ValidationError and IntegrityError-free service errors raised in views become 400s, not 500s.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


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


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = as_drf_validation_error(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
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
    return response
