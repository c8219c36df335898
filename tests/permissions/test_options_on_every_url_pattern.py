"""OPTIONS on every URL pattern of the project, in the matrix or exempt (the Swagger UI, Django admin, allauth):
never a 5xx; an API view answers its metadata in JSON. The matrix's bad-input pass sends OPTIONS to each matrix
route with its real objects; this pass reaches the exempt ones too, with placeholder values in the URL."""

from __future__ import annotations

import re

from django.urls import Resolver404, resolve

from tests.conftest import api_client_for
from tests.permissions.test_every_route_is_in_a_matrix import all_patterns

UUID = "00000000-0000-4000-8000-000000000000"
PLACEHOLDER = {"int": "1", "uuid": UUID, "slug": "x", "str": "x", "path": "x"}  # by path converter
GROUP_PLACEHOLDER = {"uuid": UUID, "sha256": "0" * 64, "sync_id": "1", "uidb36": "1", "key": "x-1"}  # by regex group


def url_of(route: str) -> str | None:
    """A path that the pattern ``route`` (route syntax, regex, or both mixed across includes) matches, or None."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: GROUP_PLACEHOLDER.get(m.group(1), "x"), route)
    path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: PLACEHOLDER.get(m.group(1) or "str", "x"), path)
    path = path.replace("^", "").replace("$", "").replace("\\", "")
    if re.search(r"[()\[\]*+?|]", path):
        return None
    try:
        resolve("/" + path)
    except Resolver404:
        return None
    return "/" + path


def test_options_on_every_url_pattern_answers_below_500_and_json_for_the_api(world):
    patterns = all_patterns()
    urls = {url for url in (url_of(p.route) for p in patterns) if url is not None}
    assert {"/api/docs/", "/api/redoc/", "/api/schema/", "/healthz", "/v2"} <= urls
    assert len(urls) > 0.9 * len(patterns), "most patterns must be reachable with placeholder values"
    failures = []
    for persona in ("owner", "anonymous"):
        client = api_client_for(world.user(persona) if persona != "anonymous" else None)
        client.raise_request_exception = False
        for url in sorted(urls):
            response = client.options(url)
            api = url.startswith(("/api/", "/v2"))
            if response.status_code >= 500:
                failures.append(f"{persona} OPTIONS {url}: {response.status_code}")
            elif api and response.content and not response["Content-Type"].startswith("application/json"):
                failures.append(f"{persona} OPTIONS {url}: {response['Content-Type']} {response.content[:100]!r}")
    assert not failures, "\n".join(failures)
