""" "Try it" end to end: the form posted as htmx does, the prediction run by a real prefork worker on Redis, the
answer rendered readably (the label and its scores, an embedding's dimension, tensors by shape), the errors on
their fields, and a link to the job when the page stops waiting."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from django.test import Client
from PIL import Image

from apps.core.jobs import Job, JobStatus
from apps.inference.predictions import PREDICT_KIND, sync_timeout_maximum
from tests import jobs_support
from tests.inference import onnx_models

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
# Publishing a version also queues its performance measurement (another inference job): the tests pick theirs.
HTMX = {"HTTP_HX_REQUEST": "true"}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def try_url(version) -> str:
    return f"/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/try/"


def test_iris_answers_setosa_with_its_scores_provider_and_timings(runnable, inference_worker, world, tmp_path):
    version = runnable.iris(tmp_path)
    response = client_for(world.user("member")).post(
        try_url(version), {"tensor_0": "[[5.1, 3.5, 1.4, 0.2]]", "timeout": "30"}, **HTMX
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    html = response.content.decode()
    assert "<html" not in html, "htmx gets the card alone"
    assert 'id="try-it"' in html
    assert re.search(r'class="badge[^"]*answer-label">setosa<', html)
    scores = re.findall(r"<td>(setosa|versicolor|virginica)</td><td[^>]*>([^<]+)</td>", html)
    assert [label for label, _ in scores] == ["setosa", "versicolor", "virginica"]
    assert float(scores[0][1]) > 0.9
    assert "CPUExecutionProvider" in html
    assert re.search(r"total <span[^>]*>(\d+(\.\d)? ms|\d+\.\d+ s)<", html)  # people's units: ms, then s
    job = Job.objects.get(kind=PREDICT_KIND)
    assert job.status == JobStatus.SUCCEEDED
    assert f"/inference/jobs/{job.uuid}/" in html


def test_minilm_answers_an_embedding_with_its_dimension_and_a_copy_button(runnable, inference_worker, world):
    version = runnable.minilm()
    response = client_for(world.user("member")).post(
        try_url(version), {"text": "I play the guitar.", "timeout": str(sync_timeout_maximum())}, **HTMX
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    html = response.content.decode()
    assert "384 dimensions" in html
    copied = re.search(r'data-copy="([^"]+)"', html).group(1)
    vector = json.loads(copied.replace("&quot;", '"'))
    assert len(vector) == 384
    assert abs(sum(value * value for value in vector) - 1.0) < 1e-3


def test_an_image_file_is_sent_as_base64_and_its_output_tensor_shown_by_shape(
    runnable, inference_worker, world, tmp_path
):
    version = runnable.version(
        "average-colour", {"model.onnx": onnx_models.image_model_path(tmp_path)}, onnx_models.IMAGE_MANIFEST
    )
    png = io.BytesIO()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(png, format="PNG")
    png.seek(0)
    png.name = "red.png"
    response = client_for(world.user("member")).post(try_url(version), {"image": png, "timeout": "30"}, **HTMX)
    assert response.status_code == 200, response.content.decode()[:2000]
    html = response.content.decode()
    assert "<code>mean</code>" in html and "[1, 3, 1, 1]" in html
    inference = Job.objects.get(kind=PREDICT_KIND).inference
    assert base64.b64decode(inference.raw_inputs["image"]).startswith(b"\x89PNG")


def test_a_file_that_is_no_image_is_refused_by_the_worker_on_the_image_field(
    runnable, inference_worker, world, tmp_path
):
    version = runnable.version(
        "average-colour", {"model.onnx": onnx_models.image_model_path(tmp_path)}, onnx_models.IMAGE_MANIFEST
    )
    upload = io.BytesIO(b"certainly not a PNG")
    upload.name = "notes.png"
    client = client_for(world.user("member"))
    response = client.post(try_url(version), {"image": upload, "timeout": "30"}, **HTMX)
    assert response.status_code == 400, response.content.decode()[:2000]
    html = response.content.decode()
    feedback = re.findall(r'<div class="invalid-feedback d-block">([^<]+)</div>', html)
    assert feedback and "image" in feedback[0].lower(), html
    job = Job.objects.get(kind=PREDICT_KIND)
    assert job.status == JobStatus.FAILED
    page = client.get(f"/inference/jobs/{job.uuid}/").content.decode()
    assert "<code>inputs.image</code>" in page


def test_a_wrong_shape_is_refused_on_its_field_before_any_job_is_written(runnable, inference_worker, world, tmp_path):
    version = runnable.iris(tmp_path)
    response = client_for(world.user("member")).post(
        try_url(version), {"tensor_0": "[[5.1, 3.5]]", "timeout": "30"}, **HTMX
    )
    assert response.status_code == 400
    feedback = re.findall(r'<div class="invalid-feedback d-block">([^<]+)</div>', response.content.decode())
    assert feedback == ["dimension 1 is 2, the model wants 4 (expected shape [?, 4], received [1, 2])"]
    assert not Job.objects.filter(kind=PREDICT_KIND).exists()


def test_a_page_that_stops_waiting_links_to_the_job_which_then_shows_the_answer(
    runnable, inference_worker, world, tmp_path
):
    version = runnable.iris(tmp_path)
    client = client_for(world.user("member"))
    response = client.post(try_url(version), {"tensor_0": "[[6.7, 3.0, 5.2, 2.3]]", "timeout": "0"}, **HTMX)
    assert response.status_code == 202
    html = response.content.decode()
    job = Job.objects.get(kind=PREDICT_KIND)
    assert "Still running" in html and f'href="/inference/jobs/{job.uuid}/"' in html
    assert f'hx-get="/inference/jobs/{job.uuid}/answer/"' in html
    jobs_support.wait_for(jobs_support.job_in(job, JobStatus.SUCCEEDED), timeout=30, what="the prediction")
    answer = client.get(f"/inference/jobs/{job.uuid}/answer/").content.decode()
    assert re.search(r'answer-label">virginica<', answer)
    assert "hx-get" not in answer, "a finished answer stops polling"
