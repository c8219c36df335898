"""How a matrix case is sent and how its answer is judged."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.files import File
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from tests.conftest import api_client_for
from tests.permissions.matrix import DONE, LOGIN, OK, Route, Scene


def url_of(route: Route, scene: Scene, persona: str) -> str:
    return reverse(route.name, kwargs={k: str(v) for k, v in route.kwargs(scene, persona).items()})


def prepare(route: Route, scene: Scene, persona: str) -> tuple[str, Any, str | None]:
    """The URL, body and listed item of the case; builds the objects they name (before anything is counted)."""
    url = url_of(route, scene, persona)
    body = route.body(scene, persona) if route.body else None
    item = route.lists(scene) if route.lists else None
    return url, body, item


def send_page(route: Route, url: str, body: Any, client: Client):
    if route.method == "GET":
        return client.get(url, route.query)
    return client.post(url, body or {})


def page_client_as(scene: Scene, persona: str) -> Client:
    """A browser-like client: a signed-in session for the persona (force_login), none for anonymous."""
    client = Client()
    if persona != "anonymous":
        client.force_login(scene.user(persona))
    return client


def send_api(route: Route, url: str, body: Any, client: APIClient):
    """GET with the route's query; other methods with a JSON body, or as multipart form data when the body holds
    a file (an upload), or as raw bytes when the body is ``bytes`` (an upload chunk)."""
    if route.method == "GET":
        return client.get(url, route.query)
    query = "?" + urlencode(route.query) if route.query else ""
    if isinstance(body, bytes):
        return client.generic(route.method, url + query, data=body, content_type="application/offset+octet-stream")
    if isinstance(body, dict) and any(isinstance(value, File) for value in body.values()):
        return getattr(client, route.method.lower())(url + query, body, format="multipart")
    return client.generic(
        route.method, url + query, data=json.dumps(body) if body is not None else "", content_type="application/json"
    )


def api_client_as(scene: Scene, persona: str, **token_kwargs) -> APIClient:
    """The persona's API client: a real Bearer token (admin scope unless told), none for anonymous."""
    if persona == "anonymous":
        return APIClient()
    return api_client_for(scene.user(persona), **token_kwargs)


def describe(route: Route, persona: str, url: str, response) -> str:
    content = getattr(response, "content", b"")
    if hasattr(response, "streaming_content"):
        content = b"<streamed>"
    return f"{persona} {route.method} {url}: {response.status_code} {content[:400]!r}"


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse(settings.LOGIN_URL))


def matches(expected: Any, response) -> bool:
    status = response.status_code
    if expected == OK:
        return 200 <= status < 300
    if expected == DONE:
        return 200 <= status < 300 or (300 <= status < 400 and not is_login_redirect(response))
    if expected == LOGIN:
        return is_login_redirect(response)
    if isinstance(expected, frozenset):
        return any(matches(item, response) for item in expected)
    return status == expected


def assert_status(expected: Any, route: Route, persona: str, url: str, response) -> None:
    message = describe(route, persona, url, response)
    assert response.status_code < 500, message
    wanted = sorted(map(str, expected)) if isinstance(expected, frozenset) else expected
    assert matches(expected, response), f"expected {wanted} — {message}"


def assert_listing(route: Route, persona: str, url: str, response, item: str | None, public: bool) -> None:
    """A list answered 2xx holds the scene's object exactly when the persona may see it."""
    if item is None or not (200 <= response.status_code < 300):
        return
    access = route.listed.public if public else route.listed.private
    found = f'"{item}"' in response.content.decode()
    should = access[persona]
    assert found == should, (
        f"{item!r} {'missing from' if should else 'listed in'} the answer — {describe(route, persona, url, response)}"
    )


def assert_api_answer(expected: Any, route: Route, persona: str, url: str, response) -> None:
    """The status, and the shape DESIGN.md asks of API errors."""
    assert_status(expected, route, persona, url, response)
    status = response.status_code
    if status == 401:
        assert response.get("WWW-Authenticate", "").startswith("Bearer"), describe(route, persona, url, response)
    if status in {401, 403, 404}:
        body = response.json()
        assert body.get("code"), f"an error without a code — {describe(route, persona, url, response)}"
        assert body.get("detail"), f"an error without a detail — {describe(route, persona, url, response)}"


def audit_event_count() -> int:
    return AuditEvent.objects.count()


def assert_audit_follows_answer(route: Route, persona: str, url: str, response, before: int) -> None:
    """DESIGN.md: every state change writes an audit event; a refused request changes nothing, so writes none."""
    after = audit_event_count()
    if not route.writes:
        return
    if 200 <= response.status_code < 300:
        if not route.audited:
            return
        assert after > before, f"an allowed write left no audit event — {describe(route, persona, url, response)}"
    else:
        assert after == before, f"a refused write wrote an audit event — {describe(route, persona, url, response)}"


def assert_page_audit_follows_answer(route: Route, persona: str, url: str, response, before: int) -> None:
    """Pages: a refused request (403, 404, a redirect to the login page) writes no audit event; a form action
    that was expected to be done and was (2xx, or a redirect elsewhere) wrote one, unless the route says that
    this persona is refused with a message (the last owner leaving)."""
    if not route.writes:
        return
    if matches(DONE, response) and persona not in route.unchanged_for:
        message = f"a form action answered as done left no audit event — {describe(route, persona, url, response)}"
        assert audit_event_count() > before, message
    if response.status_code in {403, 404} or is_login_redirect(response) or persona in route.unchanged_for:
        assert audit_event_count() == before, (
            f"a refused write wrote an audit event — {describe(route, persona, url, response)}"
        )
