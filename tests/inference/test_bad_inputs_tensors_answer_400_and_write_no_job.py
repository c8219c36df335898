"""Tensors that do not fit the model's signature answer 400 naming the input and the reason, and write no job:
a wrong input name, a wrong shape, a float into an int64 input, a NaN into a float model."""

from __future__ import annotations

import pytest

from apps.core.jobs import Job
from apps.inference.models import InferenceJob
from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND
from tests.conftest import api_client_for
from tests.inference.edge_models import iris_version

pytestmark = pytest.mark.django_db

SETOSA = [5.1, 3.5, 1.4, 0.2]


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def post(world, version, body: dict):
    return api_client_for(world.user("member")).post(predict_url(version), body, format="json")


def assert_no_job_written() -> None:
    assert not Job.objects.filter(kind__in=(PREDICT_KIND, BATCHED_PREDICT_KIND)).exists()
    assert not InferenceJob.objects.exists()


def test_a_wrong_input_name_names_the_input_and_the_models_inputs(runnable, world):
    version = iris_version(runnable)
    response = post(world, version, {"inputs": {"features": [SETOSA]}})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert "unknown input" in body["inputs.features"][0]
    assert "float_input" in body["inputs.features"][0]
    assert "required input is missing" in body["inputs.float_input"][0]
    assert body["codes"]["inputs.features"] == ["unknown_input"]
    assert body["codes"]["inputs.float_input"] == ["missing_input"]
    assert_no_job_written()


def test_a_wrong_shape_names_the_input_and_both_shapes(runnable, world):
    version = iris_version(runnable)
    response = post(world, version, {"inputs": {"float_input": [[5.1, 3.5, 1.4]]}})
    assert response.status_code == 400, response.content
    message = response.json()["inputs.float_input"][0]
    assert "dimension 1 is 3, the model wants 4" in message and "received [1, 3]" in message, message
    assert response.json()["codes"]["inputs.float_input"] == ["wrong_shape"]
    assert_no_job_written()


def test_a_float_into_an_int64_input_names_the_input_and_both_types(runnable, world):
    version = runnable.minilm()
    ids = [[101, 2000.5, 102]]
    response = post(
        world,
        version,
        {"inputs": {"input_ids": ids, "attention_mask": [[1, 1, 1]], "token_type_ids": [[0, 0, 0]]}},
    )
    assert response.status_code == 400, response.content
    message = response.json()["inputs.input_ids"][0]
    assert "expected int64" in message and "float64" in message, message
    assert response.json()["codes"]["inputs.input_ids"] == ["wrong_dtype"]
    assert set(response.json()) == {"inputs.input_ids", "code", "codes"}
    assert_no_job_written()


def test_a_nan_into_a_float_model_is_refused_with_its_position(runnable, world):
    version = iris_version(runnable)
    response = post(world, version, {"inputs": {"float_input": [SETOSA, [6.0, "NaN", 4.0, 1.2]]}})
    assert response.status_code == 400, response.content
    message = response.json()["inputs.float_input"][0]
    assert "NaN" in message and "[1, 1]" in message, message
    assert response.json()["codes"]["inputs.float_input"] == ["non_finite"]
    assert_no_job_written()
