"""The KServe v2 infer route and the "try it" form read JSON themselves (a body with binary tensors after it; a
textarea per tensor): JSON nested past INPUT_MAX_NESTING_DEPTH, or holding a lone surrogate, is refused there as
in the REST API, naming the body or the field, and no job is written. Before, 5,000 levels were a 500."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from apps.core.jobs import Job
from apps.inference.models import InferenceJob
from apps.inference.predictions import PREDICT_KIND
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture
def iris(runnable, tmp_path):
    return runnable.iris(tmp_path)


def infer(world, body: str):
    client = api_client_for(world.user("member"))
    return client.generic("POST", "/v2/models/acme--iris/infer", data=body.encode(), content_type="application/json")


def test_a_kserve_request_nested_past_the_limit_answers_400_naming_the_body(iris, world):
    response = infer(world, '{"inputs": [{"name": "float_input", "data": ' + DEEP + "}]}")
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["errors"]["body"][0].startswith("the body is nested deeper than 64 levels")
    assert body["error"].startswith("body: the body is nested deeper than 64 levels")
    assert not InferenceJob.objects.exists()


def test_a_kserve_request_with_a_lone_surrogate_answers_400_naming_where(iris, world):
    response = infer(world, '{"id": "\\ud83d", "inputs": []}')
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["errors"]["id"][0].startswith("holds a lone UTF-16 surrogate")
    assert not InferenceJob.objects.exists()


@pytest.mark.parametrize(
    ("text", "reason"),
    [(DEEP, "float_input: nested deeper than 64 levels"), ('[["\\ud83d"]]', "float_input[0][0]: holds a lone UTF-16")],
    ids=["nested", "lone-surrogate"],
)
def test_a_try_it_field_nested_too_deep_or_not_text_is_refused_on_its_field(iris, world, text, reason):
    client = Client()
    client.force_login(world.user("member"))
    response = client.post("/models/acme/iris/versions/1.0.0/try/", {"tensor_0": text}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400, response.content[:300]
    feedback = re.findall(r'<div class="invalid-feedback d-block">([^<]+)</div>', response.content.decode())
    assert len(feedback) == 1 and html.unescape(feedback[0]).startswith(reason), feedback
    assert not Job.objects.filter(kind=PREDICT_KIND).exists()
