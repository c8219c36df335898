"""The request a recorded event came from (IP, user agent), held for the duration of one request."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest


@dataclass(frozen=True)
class RequestContext:
    ip: str | None
    user_agent: str


current_request: ContextVar[RequestContext | None] = ContextVar("audit_request", default=None)


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, unless the operator named a trusted proxy header (TRUSTED_PROXY_HEADER)."""
    header = getattr(settings, "TRUSTED_PROXY_HEADER", None)
    if header and request.META.get(header):
        return request.META[header].split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def context_from_request(request: HttpRequest) -> RequestContext:
    return RequestContext(ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")[:500])
