"""The project's URLs plus views under /api/ that fail the ways Django itself answers (tests/core/
test_api_errors_django_level.py): a PermissionDenied, a SuspiciousOperation and an unexpected exception raised
outside DRF. The error handlers are the project's own (gpux_portal/urls.py)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.urls import path

from gpux_portal.urls import handler400, handler403, handler404, handler500
from gpux_portal.urls import urlpatterns as project_urlpatterns


def refuses(request):
    raise PermissionDenied("not for you")


def suspicious(request):
    raise SuspiciousOperation("a malformed request")


def fails(request):
    raise RuntimeError("an unexpected failure")


urlpatterns = [
    path("api/test-errors/forbidden", refuses),
    path("api/test-errors/suspicious", suspicious),
    path("api/test-errors/fails", fails),
    path("test-errors/fails", fails),
    *project_urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
