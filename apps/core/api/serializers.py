"""What the API's serializers share."""

from __future__ import annotations

from typing import Any


def absolute_url(request: Any, path: str) -> str:
    """``path`` as an absolute URL on the host the request came to; as it is without a request (a serializer used
    outside a view, in a task or a shell)."""
    return request.build_absolute_uri(path) if request is not None else path
