"""The OpenAPI schema builds without warnings, describes every API route, and its docs are served offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from django.contrib.admindocs.views import simplify_regex
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver, get_resolver

REPO = Path(__file__).resolve().parent.parent
DOC_PAGES = ["/api/docs/", "/api/redoc/"]


def test_schema_builds_and_validates_without_warnings(tmp_path):
    """`manage.py spectacular --validate --fail-on-warn`: any warning (an unresolvable serializer, an
    authenticator without a schema extension, a path parameter of unknown type...) fails the build."""
    out = tmp_path / "schema.yaml"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(out)],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "gpux_portal.settings"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output, output
    assert "Error" not in output, output
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3."), schema.get("openapi")


def api_routes() -> set[str]:
    """Every URL pattern in the ``api`` namespace, written as OpenAPI paths (``/api/v1/orgs/{org_slug}/``)."""
    found: set[str] = set()

    def walk(patterns, prefix: str, in_api: bool) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route, in_api or pattern.namespace == "api")
            elif isinstance(pattern, URLPattern) and in_api:
                path = simplify_regex(route)
                found.add(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path))

    walk(get_resolver().url_patterns, "", False)
    return found


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, response.content[:500]
    return response.json()


def test_schema_is_served_to_anyone_at_api_schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")


def test_schema_describes_every_api_route(schema):
    routes = api_routes()
    assert routes, "no URL pattern in the api namespace"
    missing = sorted(routes - set(schema["paths"]))
    assert not missing, f"API routes missing from the OpenAPI schema: {missing}"


def test_schema_declares_bearer_token_authentication(schema):
    schemes = schema.get("components", {}).get("securitySchemes", {})
    bearer = [name for name, s in schemes.items() if (s.get("type"), s.get("scheme")) == ("http", "bearer")]
    assert bearer, f"no HTTP bearer security scheme in the schema: {schemes}"
    secured = [
        operation
        for methods in schema["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and any(bearer[0] in entry for entry in operation.get("security", []))
    ]
    assert secured, "no operation accepts the bearer token"


class AssetCollector(HTMLParser):
    """Collects the URLs a page loads: script src, link href (stylesheets, icons, preconnects), img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in {"script", "img"} and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


@pytest.mark.parametrize("page", DOC_PAGES)
def test_api_docs_page_loads_only_local_static_files(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    collector = AssetCollector()
    collector.feed(html)
    assert collector.urls, f"{page} loads no script or stylesheet at all"
    remote = [url for url in collector.urls if re.match(r"^(https?:)?//", url)]
    assert not remote, f"{page} loads from outside the portal: {remote}"
    for url in collector.urls:
        assert url.startswith("/static/"), f"{page} loads {url}, not a static file"
        assert finders.find(url.removeprefix("/static/")), f"{page} loads {url}, which no static finder has"
    assert not re.search(r"https?://(?!localhost|127\.0\.0\.1|testserver)", html), f"{page} names a remote URL"
