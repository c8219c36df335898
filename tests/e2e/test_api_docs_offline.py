"""The API docs (Swagger UI and Redoc) render in a browser and load nothing from outside the portal.

DESIGN.md: nothing is loaded from a CDN at run time. The HTML check in tests/test_openapi_schema.py reads the
page's tags; this one records every request the browser really makes, scripts' own fetches included.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        ("/api/docs/", ".swagger-ui .info .title"),
        ("/api/redoc/", "h1"),
    ],
    ids=["swagger-ui", "redoc"],
)
def test_api_docs_render_from_the_portal_alone(live_server, page, screenshot, path, rendered):
    origin = urlsplit(live_server.url).netloc
    requested: list[str] = []
    blocked: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    # A load the page's Content-Security-Policy refuses never leaves the browser: it is not a CDN load.
    page.on("requestfailed", lambda request: request.failure == "csp" and blocked.append(request.url))
    page.goto(f"{live_server.url}{path}", wait_until="networkidle")
    page.wait_for_selector(rendered)
    assert "GPUX Portal API" in page.inner_text(rendered)
    screenshot(page, path.strip("/").replace("/", "-"))
    outside = [
        url
        for url in requested
        if urlsplit(url).scheme in {"http", "https"} and urlsplit(url).netloc != origin and url not in blocked
    ]
    assert not outside, f"{path} made requests outside the portal: {outside}"
    assert any(url.endswith("/api/schema/") or "/api/schema/" in url for url in requested), requested
