"""The portal's WSGI application for benchmarks/inference.py, with one more route: ``GET /bench/floor``, a bare
Django JSON view (no authentication, no database) behind the same middleware, served by the same gunicorn
settings as the portal's routes: the web floor any route here pays."""

from __future__ import annotations

import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpux_portal.settings")
django.setup()
settings.ROOT_URLCONF = "bench_urls"

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
