"""Payloads that cannot be decoded, or are too large, answer 400 naming the field and the reason and write no
job: an oversized tensor (``INFERENCE_MAX_REQUEST_BYTES``), base64 that is not base64, a ``.npz`` body that is
not a zip archive."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from apps.core.jobs import Job
from apps.inference.models import InferenceJob
from apps.inference.predictions import BATCHED_PREDICT_KIND, PREDICT_KIND
from tests.conftest import api_client_for
from tests.inference.edge_models import iris_version

pytestmark = pytest.mark.django_db


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


def assert_no_job_written() -> None:
    assert not Job.objects.filter(kind__in=(PREDICT_KIND, BATCHED_PREDICT_KIND)).exists()
    assert not InferenceJob.objects.exists()


def test_a_payload_over_the_request_limit_says_how_large_and_the_limit(runnable, world, settings):
    settings.INFERENCE_MAX_REQUEST_BYTES = 1024
    version = iris_version(runnable)
    rows = np.ones((100, 4), dtype=np.float32)  # 1,600 bytes
    tensor = {"b64": base64.b64encode(rows.tobytes()).decode(), "dtype": "float32", "shape": [100, 4]}
    response = api_client_for(world.user("member")).post(
        predict_url(version), {"inputs": {"float_input": tensor}}, format="json"
    )
    assert response.status_code == 400, response.content
    message = response.json()["inputs.float_input"][0]
    assert "1600 bytes" in message and "limit of 1024 bytes" in message, message
    assert response.json()["codes"]["inputs.float_input"] == ["too_large"]
    assert_no_job_written()


def test_undecodable_base64_names_the_input(runnable, world):
    version = iris_version(runnable)
    tensor = {"b64": "this is not base64!!", "dtype": "float32", "shape": [1, 4]}
    response = api_client_for(world.user("member")).post(
        predict_url(version), {"inputs": {"float_input": tensor}}, format="json"
    )
    assert response.status_code == 400, response.content
    message = response.json()["inputs.float_input"][0]
    assert message.startswith("not valid base64"), message
    assert response.json()["codes"]["inputs.float_input"] == ["undecodable"]
    assert_no_job_written()


def test_a_malformed_npz_body_says_it_is_not_a_zip_archive(runnable, world):
    version = iris_version(runnable)
    response = api_client_for(world.user("member")).generic(
        "POST", predict_url(version), b"PK\x03\x04 but no archive", content_type="application/x-npz"
    )
    assert response.status_code == 400, response.content
    message = response.json()["inputs"][0]
    assert "not an .npz (zip) archive" in message, message
    assert response.json()["codes"]["inputs"] == ["undecodable"]
    assert_no_job_written()


def test_an_npz_body_with_a_wrong_input_is_refused_like_json(runnable, world):
    version = iris_version(runnable)
    buffer = io.BytesIO()
    np.savez(buffer, features=np.ones((1, 4), dtype=np.float32))
    response = api_client_for(world.user("member")).generic(
        "POST", predict_url(version), buffer.getvalue(), content_type="application/x-npz"
    )
    assert response.status_code == 400, response.content
    assert "unknown input" in response.json()["inputs.features"][0]
    assert_no_job_written()
