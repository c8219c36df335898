"""The bad-input pass: every route of the permission matrix, API and pages, sent the hostile shapes of
tests/permissions/hostile.py (OPTIONS, nesting past the limit, lone surrogates), never answers a 5xx; the API
answers its JSON error shape (``code``, and ``detail`` or the fields). A new route in the matrix gets them for free.

Each case is sent by acme's owner (who gets furthest past the access checks, so the body is read) on a fresh scene;
OPTIONS also by an anonymous caller.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

from tests.permissions.checks import api_client_as, describe, page_client_as, prepare
from tests.permissions.hostile import Shape, api_shapes, hostile_query, page_shapes
from tests.permissions.matrix import API_ROUTES, PAGE_ROUTES, Route, no_kwargs


def unique(routes: list[Route]) -> list[Route]:
    """One case per (URL name, method, query): the same route for another model's visibility is kept."""
    seen, kept = set(), []
    for route in routes:
        if route.id not in seen:
            seen.add(route.id)
            kept.append(route)
    return kept


def query_of(route: Route) -> str:
    return "?" + urlencode(route.query) if route.query else ""


def without_raising(client: Client) -> Client:
    """The test client answers a server error as the server would (a 500), so the message names the route."""
    client.raise_request_exception = False
    return client


def send(client: Client, method: str, url: str, shape: Shape):
    if shape.form is not None:
        return (
            getattr(client, method.lower())(url, shape.form)
            if method == "POST"
            else client.generic(
                method, url, data=urlencode(shape.form), content_type="application/x-www-form-urlencoded"
            )
        )
    return client.generic(method, url, data=shape.text.encode(), content_type=shape.content_type)


def assert_no_server_error(label: str, persona: str, route: Route, url: str, response) -> None:
    assert response.status_code < 500, f"{label}: {describe(route, persona, url, response)}"


def assert_api_error_shape(label: str, persona: str, route: Route, url: str, response) -> None:
    """An API answer to hostile input: below 500, and an error is JSON that says what went wrong, with a code."""
    assert_no_server_error(label, persona, route, url, response)
    if response.status_code < 400:
        return
    message = f"{label}: {describe(route, persona, url, response)}"
    assert response["Content-Type"].startswith("application/json"), message
    body = response.json()
    assert isinstance(body, dict) and body.get("code"), message
    assert body.get("detail") or any(key not in {"code", "codes"} for key in body), message


@pytest.mark.parametrize("route", [pytest.param(r, id=r.id) for r in unique(API_ROUTES)])
def test_api_route_answers_hostile_input_with_a_4xx_in_the_error_shape(scene, route):
    url, body, _item = prepare(route, scene, "owner")
    for persona in ("owner", "anonymous"):
        response = without_raising(api_client_as(scene, persona)).options(url + query_of(route))
        assert_api_error_shape("OPTIONS", persona, route, url, response)
        if response.status_code == 200 and response.content:
            assert response["Content-Type"].startswith("application/json"), describe(route, persona, url, response)
    client = without_raising(api_client_as(scene, "owner"))
    if route.method in {"GET", "HEAD"}:
        hostile = url + hostile_query(route.query)
        response = client.generic(route.method, hostile)
        assert_api_error_shape("the surrogate's bytes in the query", "owner", route, hostile, response)
        return
    for shape in api_shapes(body):
        response = send(client, route.method, url + query_of(route), shape)
        assert_api_error_shape(shape.label, "owner", route, url, response)


@pytest.mark.parametrize("route", [pytest.param(r, id=r.id) for r in unique(PAGE_ROUTES)])
def test_page_answers_hostile_input_without_a_server_error(scene, route):
    url, body, _item = prepare(route, scene, "owner")
    for persona in ("owner", "anonymous"):
        response = without_raising(page_client_as(scene, persona)).options(url)
        assert_no_server_error("OPTIONS", persona, route, url, response)
    client = without_raising(page_client_as(scene, "owner"))
    if route.method in {"GET", "HEAD"}:
        hostile = url + hostile_query(route.query)
        assert_no_server_error("the surrogate's bytes in the query", "owner", route, hostile, client.get(hostile))
        return
    for shape in page_shapes(body):
        response = send(client, route.method, url + query_of(route), shape)
        assert_no_server_error(shape.label, "owner", route, url, response)


def mangled_urls(route: Route, scene) -> list[tuple[str, str]]:
    """The route's URL with each argument in turn replaced by one that names nothing: ``not-a-uuid`` where a UUID
    is expected (no URL pattern matches: Django's 404), ``no-such-<name>`` elsewhere (the view's lookup: DRF's)."""
    url, _body, _item = prepare(route, scene, "owner")
    mangled = []
    for name, value in route.kwargs(scene, "owner").items():
        text = str(value)
        looks_like_uuid = len(text) == 36 and text.count("-") == 4
        wrong = "not-a-uuid" if looks_like_uuid else f"no-such-{name.replace('_', '-')}"
        if f"/{text}" in url:
            mangled.append((name, url.replace(f"/{text}", f"/{wrong}", 1)))
    return mangled


@pytest.mark.parametrize("route", [pytest.param(r, id=r.id) for r in unique(API_ROUTES) if r.kwargs is not no_kwargs])
def test_api_route_whose_url_names_nothing_answers_404_in_the_error_shape(scene, route):
    client = without_raising(api_client_as(scene, "owner"))
    cases = mangled_urls(route, scene)
    assert cases, f"{route.id}: no argument of the URL could be replaced"
    for name, url in cases:
        if route.method in {"GET", "HEAD"}:
            response = client.generic(route.method, url + query_of(route))
        else:
            response = client.generic(route.method, url + query_of(route), data="{}", content_type="application/json")
        assert_api_error_shape(f"{name} names nothing", "owner", route, url, response)
        assert response.status_code == 404, describe(route, "owner", url, response)
