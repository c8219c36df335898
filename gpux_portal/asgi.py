"""ASGI entry, for long-lived streams only: pages and API are served over WSGI (DESIGN.md)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpux_portal.settings")
application = get_asgi_application()
