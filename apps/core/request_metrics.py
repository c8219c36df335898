"""django-prometheus's per-request metrics, read without building ``request.headers``.

``PrometheusAfterMiddleware.process_request`` reads two headers through ``request.headers``, which builds a
case-insensitive copy of every header of the request from ``META`` (about twenty of them from a browser): on a
prediction it was the only reader of ``request.headers``, a few hundredths of a millisecond of every request's CPU
(issue #15). Here the same two values come from ``META``; the metrics, their names and labels are django-prometheus's.
"""

from __future__ import annotations

from typing import Any

from django_prometheus.middleware import PrometheusAfterMiddleware as BaseAfterMiddleware
from django_prometheus.utils import Time


class PrometheusAfterMiddleware(BaseAfterMiddleware):
    """django-prometheus's last middleware, reading ``X-Requested-With`` and ``Content-Length`` from ``META``."""

    def process_request(self, request: Any) -> None:
        meta = request.META
        self.label_metric(self.metrics.requests_by_method, request, method=self._method(request)).inc()
        self.label_metric(self.metrics.requests_by_transport, request, transport=self._transport(request)).inc()
        if meta.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":  # what Request.is_ajax() was
            self.label_metric(self.metrics.requests_ajax, request).inc()
        content_length = int(meta.get("CONTENT_LENGTH") or 0)
        self.label_metric(self.metrics.requests_body_bytes, request).observe(content_length)
        request.prometheus_after_middleware_event = Time()
