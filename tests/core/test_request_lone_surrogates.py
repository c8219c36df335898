"""A lone UTF-16 surrogate (JSON ``"\\ud83d"``) is not Unicode text: refused by the API's parser with a 400 that
names the field, before any view sees it. Before, a field whose error repeats the value (``scope``,
``visibility``, ``device``, ``encoding``, ``webhook_url``) made the JSON renderer fail after the view had
answered: a bare 500. A complete surrogate pair (an emoji written as two escapes) is text and passes."""

from __future__ import annotations

import pytest

from apps.accounts.models import ApiToken
from apps.core.access import Visibility
from apps.organizations.models import Organization
from tests.conftest import api_client_for
from tests.permissions.matrix import Scene

pytestmark = pytest.mark.django_db

LONE = "\\ud83d"  # as written in the JSON text


def iris_version(world):
    """A published, validated version of ONNX Runtime's iris example in acme (the matrix's builder)."""
    from tests.inference.matrix_api import runnable_version  # after tests.permissions.matrix, which it extends

    return runnable_version(Scene(world), Visibility.PRIVATE)


def send(client, method: str, url: str, text: str):
    client.raise_request_exception = False
    return client.generic(method, url, text, content_type="application/json")


def assert_names_the_field(response, field: str) -> None:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["codes"] == {field: ["invalid_text"]}
    assert "lone UTF-16 surrogate" in body[field][0]


def test_a_lone_surrogate_in_a_token_scope_answers_400_naming_scope_and_makes_no_token(world):
    client = api_client_for(world.user("member"))
    before = ApiToken.objects.count()
    response = send(client, "POST", "/api/v1/user/tokens/", f'{{"name": "laptop", "scope": "{LONE}"}}')
    assert_names_the_field(response, "scope")
    assert ApiToken.objects.count() == before


def test_a_lone_surrogate_in_an_organization_visibility_answers_400_naming_visibility(world):
    client = api_client_for(world.user("owner"))
    response = send(client, "PATCH", "/api/v1/orgs/acme/", f'{{"visibility": "{LONE}"}}')
    assert_names_the_field(response, "visibility")
    assert Organization.objects.get(slug="acme").visibility == world.org.visibility


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("encoding", f'{{"inputs": {{"float_input": [[1, 2], [3, 4], [5, 6]]}}, "encoding": "{LONE}"}}'),
        ("webhook_url", f'{{"inputs": {{"float_input": [[1, 2], [3, 4], [5, 6]]}}, "webhook_url": "{LONE}"}}'),
        ("inputs.text", f'{{"inputs": {{"text": "hello {LONE} world"}}}}'),
    ],
)
def test_a_lone_surrogate_in_a_prediction_answers_400_naming_the_field(world, field, text):
    version = iris_version(world)
    client = api_client_for(world.user("member"))
    url = f"/api/v1/models/acme/{version.model.name}/versions/{version.label}/predict?async=1"
    assert_names_the_field(send(client, "POST", url, text), field)


def test_a_lone_surrogate_in_a_deployment_device_answers_400_naming_device(world):
    version = iris_version(world)
    client = api_client_for(world.user("member"))
    text = f'{{"slug": "iris", "model": "{version.model.name}", "version": "1.0.0", "device": "{LONE}"}}'
    assert_names_the_field(send(client, "POST", "/api/v1/orgs/acme/deployments/", text), "device")


def test_a_lone_surrogate_in_a_key_or_deep_in_a_list_is_found_by_its_path(world):
    client = api_client_for(world.user("owner"))
    response = send(client, "PATCH", "/api/v1/orgs/acme/", f'{{"tags": [["ok", "x{LONE}"]]}}')
    assert_names_the_field(response, "tags[0][1]")
    response = send(client, "PATCH", "/api/v1/orgs/acme/", f'{{"{LONE}": 1}}')
    assert_names_the_field(response, "(a key)")


def test_a_body_that_is_only_a_lone_surrogate_is_refused_as_a_whole(world):
    response = send(api_client_for(world.user("owner")), "PATCH", "/api/v1/orgs/acme/", f'"{LONE}"')
    assert_names_the_field(response, "non_field_errors")


def test_a_surrogate_pair_is_text_and_is_kept(world):
    client = api_client_for(world.user("owner"))
    response = send(client, "PATCH", "/api/v1/orgs/acme/", '{"description": "launch \\ud83d\\ude80"}')
    assert response.status_code == 200, response.content[:300]
    assert Organization.objects.get(slug="acme").description == "launch \U0001f680"


def test_the_surrogates_bytes_in_a_query_string_are_replaced_not_a_server_error(world):
    client = api_client_for(world.user("owner"))
    client.raise_request_exception = False
    response = client.get("/api/v1/orgs/?search=%ED%A0%BD&visibility=%ED%A0%BD")
    assert response.status_code in {200, 400}, response.content[:300]
    response.json()
