"""URLs of benchmarks/bench_wsgi.py: the web floor's bare JSON view, then every route of the portal."""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import include, path


def floor(request):
    """No authentication, no database: what Django and gunicorn alone cost."""
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bench/floor", floor), path("", include("gpux_portal.urls"))]
