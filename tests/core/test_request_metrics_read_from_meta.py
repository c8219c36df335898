"""django-prometheus's per-request metrics (``apps.core.request_metrics.PrometheusAfterMiddleware``) count what
django-prometheus's own middleware counts, read from ``META`` without building ``request.headers``."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django_prometheus.middleware import PrometheusAfterMiddleware as DjangoPrometheusAfter
from prometheus_client import REGISTRY

from apps.core.request_metrics import PrometheusAfterMiddleware

NAMES = (
    ("django_http_requests_total_by_method_total", {"method": "POST"}),
    ("django_http_requests_total_by_transport_total", {"transport": "http"}),
    ("django_http_ajax_requests_total", {}),
    ("django_http_requests_body_total_bytes_sum", {}),
    ("django_http_requests_body_total_bytes_count", {}),
)


def _values() -> dict[str, float]:
    return {name: REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in NAMES}


def _count(middleware_class, request) -> dict[str, float]:
    middleware = middleware_class(lambda request: HttpResponse())
    before = _values()
    middleware.process_request(request)
    assert hasattr(request, "prometheus_after_middleware_event")
    return {name: value - before[name] for name, value in _values().items()}


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"},
        {"HTTP_X_REQUESTED_WITH": "something-else"},
        {},
    ],
)
def test_the_same_metrics_as_django_prometheus_without_request_headers(headers):
    def request():
        return RequestFactory().post("/anywhere", data=b'{"x": 1}', content_type="application/json", **headers)

    ours = request()
    counted = _count(PrometheusAfterMiddleware, ours)
    assert "headers" not in ours.__dict__  # request.headers was never built
    assert counted == _count(DjangoPrometheusAfter, request())
    assert counted["django_http_requests_body_total_bytes_sum"] == len(b'{"x": 1}')
    assert counted["django_http_ajax_requests_total"] == (1 if headers else 0) * (
        headers.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest"
    )


def test_a_request_without_a_body_counts_zero_bytes():
    request = RequestFactory().get("/anywhere")
    request.META.pop("CONTENT_LENGTH", None)
    assert _count(PrometheusAfterMiddleware, request)["django_http_requests_body_total_bytes_sum"] == 0


def test_the_portal_uses_it_as_its_last_middleware():
    from django.conf import settings

    assert settings.MIDDLEWARE[-1] == "apps.core.request_metrics.PrometheusAfterMiddleware"
