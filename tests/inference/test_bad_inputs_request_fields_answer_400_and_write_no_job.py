"""A prediction request's own fields are checked before anything is written: an unknown field, an unknown
``encoding``, a ``timeout`` that is not a number of seconds in range, a ``webhook_url`` on a loopback address
(refused unless the operator allow-lists it), ``outputs`` that are not names of the model's outputs each answer 400
naming the field, and write no job."""

from __future__ import annotations

import pytest

from apps.core.jobs import Job
from apps.inference.models import InferenceJob
from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND
from tests.conftest import api_client_for
from tests.inference.edge_models import iris_version

pytestmark = pytest.mark.django_db

INPUTS = {"float_input": [[5.1, 3.5, 1.4, 0.2]]}


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def post(world, version, body: dict):
    return api_client_for(world.user("member")).post(predict_url(version), body, format="json")


def assert_no_job_written() -> None:
    assert not Job.objects.filter(kind__in=(PREDICT_KIND, BATCHED_PREDICT_KIND)).exists()
    assert not InferenceJob.objects.exists()


def test_an_unknown_field_is_named_with_the_fields_a_prediction_takes(runnable, world):
    version = iris_version(runnable)
    response = post(world, version, {"inputs": INPUTS, "temperature": 0.7})
    assert response.status_code == 400, response.content
    message = response.json()["temperature"][0]
    assert "Unknown field" in message and "inputs" in message and "webhook_url" in message, message
    assert response.json()["codes"]["temperature"] == ["unknown_field"]
    assert_no_job_written()


def test_an_unknown_encoding_lists_the_encodings(runnable, world):
    version = iris_version(runnable)
    response = post(world, version, {"inputs": INPUTS, "encoding": "protobuf"})
    assert response.status_code == 400, response.content
    message = response.json()["encoding"][0]
    assert "protobuf" in message and "json, b64, npy" in message, message
    assert_no_job_written()


@pytest.mark.parametrize(
    ("timeout", "reason"), [("soon", "Expected a number of seconds"), (-1, "Expected between 0 and"), (10_000, "50")]
)
def test_a_bad_timeout_says_what_a_timeout_is(runnable, world, timeout, reason):
    version = iris_version(runnable)
    response = post(world, version, {"inputs": INPUTS, "timeout": timeout})
    assert response.status_code == 400, response.content
    assert reason in response.json()["timeout"][0], response.json()
    assert_no_job_written()


def test_a_webhook_on_loopback_is_refused_unless_allow_listed(runnable, world, settings):
    settings.INFERENCE_WEBHOOK_ALLOWED_NETWORKS = []
    version = iris_version(runnable)
    response = post(world, version, {"inputs": INPUTS, "webhook_url": "http://127.0.0.1:9/hook"})
    assert response.status_code == 400, response.content
    message = response.json()["webhook_url"][0]
    assert "127.0.0.1" in message and "GPUX_WEBHOOK_ALLOWED_NETWORKS" in message, message
    assert response.json()["codes"]["webhook_url"] == ["unsafe_url"]
    assert_no_job_written()


def test_a_webhook_on_an_allow_listed_network_is_taken(runnable, world, settings):
    settings.INFERENCE_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    version = iris_version(runnable)
    response = api_client_for(world.user("member")).post(
        predict_url(version) + "?async=1", {"inputs": INPUTS, "webhook_url": "http://127.0.0.1:9/hook"}, format="json"
    )
    assert response.status_code == 202, response.content
    assert InferenceJob.objects.get(job__uuid=response.json()["job"]).webhook_url == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    ("outputs", "reason", "code"),
    [
        ("label", "Expected a list of output names", "invalid"),
        (["label", 3], "Expected a list of output names", "invalid"),
        (["label", "logits"], "“logits” is not an output of the model; it has label, probabilities", "unknown_output"),
    ],
)
def test_bad_outputs_say_what_the_model_outputs_are(runnable, world, outputs, reason, code):
    version = iris_version(runnable)
    response = post(world, version, {"inputs": INPUTS, "outputs": outputs})
    assert response.status_code == 400, response.content
    assert reason in response.json()["outputs"][0], response.json()
    assert response.json()["codes"]["outputs"] == [code]
    assert_no_job_written()
