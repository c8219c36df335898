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

# The portal's own WSGI module (its application and its warm-up of the URL indexes, now of bench_urls).
from gpux_portal.wsgi import application  # noqa: E402,F401
