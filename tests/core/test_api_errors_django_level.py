"""Errors that Django answers itself, outside any API view, keep the API's JSON error shape under /api/
(``{"detail": ..., "code": ...}``, as DRF's do): a URL no pattern matches (a detail URL whose UUID is not one), a
bad Host header, a PermissionDenied or an unexpected exception raised outside DRF. Pages keep Django's pages."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json", response.content[:300]
    body = response.json()
    assert body["code"] == code and body["detail"], body
    return body


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/jobs/not-a-uuid/",
        "/api/v1/user/tokens/12345/",
        "/api/v1/no-such-thing/",
        "/api/nothing",
        "/api/v1/orgs/acme/teams/core/members/x/y/z/",
    ],
)
def test_an_api_url_that_matches_no_pattern_answers_404_in_the_json_error_shape(world, url):
    json_error(api_client_for(world.user("member")).get(url), 404, "not_found")


def test_an_anonymous_caller_of_an_unmatched_api_url_gets_the_same_json_404(db):
    json_error(Client().get("/api/v1/jobs/not-a-uuid/"), 404, "not_found")


def test_a_page_url_that_matches_no_pattern_keeps_the_html_404(db):
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_host_the_portal_does_not_serve_answers_400_in_the_json_error_shape(world):
    response = api_client_for(world.user("member")).get("/api/v1/user/", HTTP_HOST="evil.example")
    json_error(response, 400, "bad_request")


def test_a_post_to_the_swagger_ui_answers_405_in_json_not_the_page_template(db):
    response = Client().post("/api/docs/", {})
    json_error(response, 405, "method_not_allowed")


@pytest.mark.urls("tests.core.urls_django_errors")
def test_a_permission_denied_outside_drf_answers_403_in_the_json_error_shape(db):
    json_error(Client().get("/api/test-errors/forbidden"), 403, "permission_denied")


@pytest.mark.urls("tests.core.urls_django_errors")
def test_a_suspicious_request_outside_drf_answers_400_in_the_json_error_shape(db):
    json_error(Client().get("/api/test-errors/suspicious"), 400, "bad_request")


@pytest.mark.urls("tests.core.urls_django_errors")
def test_an_unexpected_exception_under_the_api_answers_500_in_the_json_error_shape(db):
    client = Client(raise_request_exception=False)
    body = json_error(client.get("/api/test-errors/fails"), 500, "server_error")
    assert "unexpected failure" not in body["detail"], "the exception's text stays in the log"


@pytest.mark.urls("tests.core.urls_django_errors")
def test_an_unexpected_exception_on_a_page_keeps_the_html_500(db):
    response = Client(raise_request_exception=False).get("/test-errors/fails")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
