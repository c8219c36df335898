"""A synchronous caller never asks the web server to wait longer than it answers: gunicorn ends a request after
``GPUX_WEB_TIMEOUT`` seconds (60), so a ``timeout`` past that less a margin (50 s) is refused with 400 naming
``timeout``, the maximum and why, before any job is written; the prediction API, pipeline runs, KServe v2 and the
try-it form all hold to it. Before, 100 s was taken (the operator's maximum was 120) and the web worker was killed
mid-wait: a 500."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.core.jobs import Job
from apps.inference.pipelines import PIPELINE_KIND, save_pipeline
from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND, sync_timeout, sync_timeout_maximum
from tests.conftest import api_client_for
from tests.inference.edge_models import iris_version
from tests.inference.pipeline_models import ref

pytestmark = pytest.mark.django_db

FLOWER = [[5.1, 3.5, 1.4, 0.2]]
RUN_KINDS = (PREDICT_KIND, BATCHED_PREDICT_KIND, PIPELINE_KIND)


@pytest.fixture(autouse=True)
def web_server_limit(settings):
    settings.WEB_TIMEOUT_SECONDS = 60
    settings.INFERENCE_SYNC_TIMEOUT_MAX_SECONDS = 120


def test_a_prediction_asking_to_wait_past_the_web_servers_limit_is_refused_naming_the_maximum(runnable, world):
    version = iris_version(runnable)

    response = api_client_for(world.user("member")).post(
        f"/api/v1/models/acme/{version.model.name}/versions/{version.label}/predict",
        {"inputs": {"float_input": FLOWER}, "timeout": 100},
        format="json",
    )

    assert response.status_code == 400, response.content
    message = response.json()["timeout"][0]
    assert "between 0 and 50 seconds" in message and "after 60 s" in message and "async" in message, message
    assert not Job.objects.filter(kind__in=RUN_KINDS).exists()


def test_a_pipeline_run_asking_to_wait_past_the_limit_is_refused(runnable, world):
    iris = iris_version(runnable)
    save_pipeline(
        organization=world.org,
        slug="classify",
        steps=[{"name": "classify", "version": ref(iris), "inputs": {"float_input": "input.features"}}],
        outputs={"label": "classify.label"},
        actor=world.user("member"),
    )

    response = api_client_for(world.user("member")).post(
        "/api/v1/orgs/acme/pipelines/classify/run", {"inputs": {"features": FLOWER}, "timeout": 100}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "between 0 and 50 seconds" in response.json()["timeout"][0]
    assert not Job.objects.filter(kind__in=RUN_KINDS).exists()


def test_a_kserve_timeout_past_the_limit_is_refused_in_the_protocols_terms(runnable, world):
    version = iris_version(runnable)
    body = {
        "inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": FLOWER[0]}],
        "parameters": {"timeout": 100_000_000},  # 100 s in microseconds
    }

    response = api_client_for(world.user("member")).post(
        f"/v2/models/acme--{version.model.name}/infer", json.dumps(body), content_type="application/json"
    )

    assert response.status_code == 400, response.content
    assert "parameters.timeout" in response.json()["errors"]
    assert "limit of 50 s" in response.json()["error"]
    assert not Job.objects.filter(kind__in=RUN_KINDS).exists()


def test_the_try_it_form_offers_no_wait_past_the_limit(runnable, world):
    version = iris_version(runnable)

    browser = Client()
    browser.force_login(world.user("member"))

    response = browser.post(
        f"/models/acme/{version.model.name}/versions/{version.label}/try/",
        {"tensor_0": json.dumps(FLOWER), "timeout": "100"},
    )

    assert response.status_code == 400
    assert "The longest a page may wait is 50 seconds." in response.content.decode()
    assert not Job.objects.filter(kind__in=RUN_KINDS).exists()


def test_the_maximum_follows_the_web_servers_limit_and_the_operators_own_whichever_is_lower(settings):
    assert sync_timeout_maximum() == 50
    settings.WEB_TIMEOUT_SECONDS = 300
    assert sync_timeout_maximum() == 120
    assert sync_timeout(100) == 100


def test_the_default_wait_never_exceeds_the_maximum(settings):
    settings.WEB_TIMEOUT_SECONDS = 30
    settings.INFERENCE_SYNC_TIMEOUT_SECONDS = 45

    assert sync_timeout(None) == 20
