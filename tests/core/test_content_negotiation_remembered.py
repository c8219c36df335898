"""The API's content negotiation remembers its choices per process (``apps.core.api.metadata.ContentNegotiation``):
every choice, first or remembered, is the one DRF makes for the same headers; refusals are never kept; client
headers cannot grow what is kept past its bound."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.core.api.metadata import ContentNegotiation
from apps.core.api.parsers import JSONParser
from apps.core.api.renderers import JSONRenderer

ACCEPTS = [
    None,
    "",
    "*/*",
    "application/json",
    "application/json; indent=4",
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/*",
    "application/json;q=0.5, text/html",
    "image/png",
]
FORMATS = [None, "json", "api", "yaml"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "text/plain", "", "application/jsonx"]  # fmt: skip


@pytest.fixture(autouse=True)
def _forget_choices():
    ContentNegotiation._parsers_chosen.clear()
    ContentNegotiation._renderers_chosen.clear()
    yield
    ContentNegotiation._parsers_chosen.clear()
    ContentNegotiation._renderers_chosen.clear()


def _request(accept=None, format=None, content_type=None, method="get") -> Request:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    path = "/x" + (f"?format={format}" if format else "")
    factory = APIRequestFactory()
    if method == "post":
        return Request(factory.generic("POST", path, b"", content_type=content_type or "", **headers))
    return Request(factory.get(path, **headers))


def _renderers():
    return [JSONRenderer(), BrowsableAPIRenderer()]


def _choice(negotiation_class, accept, format):
    """What ``negotiation_class`` chooses for these headers: the renderer's class and media type, or the refusal."""
    renderers = _renderers()
    try:
        renderer, media_type = negotiation_class().select_renderer(_request(accept, format), renderers)
    except (exceptions.NotAcceptable, Http404) as exc:
        return type(exc)
    assert renderer in renderers  # one of this view's own renderer instances, not a kept one
    return type(renderer), media_type


def _drf_choice(accept, format):
    return _choice(DefaultContentNegotiation, accept, format)


def _remembered_choice(accept, format):
    return _choice(ContentNegotiation, accept, format)


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("accept", ACCEPTS)
def test_every_renderer_choice_is_drfs_first_and_when_remembered(accept, format):
    expected = _drf_choice(accept, format)
    assert _remembered_choice(accept, format) == expected
    assert _remembered_choice(accept, format) == expected
    kept = len(ContentNegotiation._renderers_chosen)
    assert kept == (0 if expected in (exceptions.NotAcceptable, Http404) else 1)  # refusals are not kept


def test_one_process_remembers_many_headers_without_mixing_them():
    for _ in range(2):
        for accept in ACCEPTS:
            for format in FORMATS:
                assert _remembered_choice(accept, format) == _drf_choice(accept, format), (accept, format)


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_every_parser_choice_is_drfs_first_and_when_remembered(content_type):
    def choose(negotiation):
        parsers = [JSONParser(), FormParser(), MultiPartParser()]
        chosen = negotiation.select_parser(_request(content_type=content_type, method="post"), parsers)
        if chosen is not None:
            assert chosen in parsers
        return type(chosen) if chosen is not None else None

    expected = choose(DefaultContentNegotiation())
    assert choose(ContentNegotiation()) == expected
    assert choose(ContentNegotiation()) == expected
    assert len(ContentNegotiation._parsers_chosen) == (0 if expected is None else 1)  # a 415 is not kept


def test_the_same_headers_for_other_renderer_classes_choose_among_those():
    negotiation = ContentNegotiation()
    renderer, _ = negotiation.select_renderer(_request("text/html"), _renderers())
    assert isinstance(renderer, BrowsableAPIRenderer)
    with pytest.raises(exceptions.NotAcceptable):  # a JSON-only view refuses what the browsable one accepted
        negotiation.select_renderer(_request("text/html"), [JSONRenderer()])


def test_client_headers_cannot_grow_what_is_kept_past_its_bound(monkeypatch):
    monkeypatch.setattr(ContentNegotiation, "CHOICES_KEPT", 5)
    negotiation = ContentNegotiation()
    for number in range(20):
        _renderer, media_type = negotiation.select_renderer(
            _request(f"application/json; indent={number}"), _renderers()
        )
        assert media_type == f"application/json; indent={number}"  # still DRF's answer past the bound
    assert len(ContentNegotiation._renderers_chosen) == 5
    long_accept = "application/json; x=" + "y" * 300
    assert _remembered_choice(long_accept, None) == _drf_choice(long_accept, None)
    assert all(len(key[0]) <= ContentNegotiation.LONGEST_KEPT for key in ContentNegotiation._renderers_chosen)


@pytest.mark.django_db
def test_the_api_answers_each_accept_as_before(api_client):
    """Through a real route: JSON by default and for JSON, the browsable page for a browser, 406 for an image, and
    the same answers again once remembered."""
    from tests.factories import UserFactory

    client = api_client(UserFactory())
    for _ in range(2):
        assert client.get("/api/v1/user/").headers["Content-Type"] == "application/json"
        assert client.get("/api/v1/user/", HTTP_ACCEPT="application/json").headers["Content-Type"] == (
            "application/json"
        )
        page = client.get("/api/v1/user/", HTTP_ACCEPT="text/html")
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert client.get("/api/v1/user/", HTTP_ACCEPT="image/png").status_code == 406
