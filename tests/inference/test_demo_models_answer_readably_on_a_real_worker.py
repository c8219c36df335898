"""The demo of ``make run`` answers in words and numbers people read, through the API and the "try it" card, from a
real prefork worker: the MiniLM takes ``{"text": ...}`` and answers its 384-dimension sentence embedding (length
1), the iris classifier answers class names with scores (setosa 0.98), and the page shows them rounded, with "Copy
vector" and the raw tensors folded away."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client

from apps.accounts.models import User
from tests.conftest import api_client_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

MINILM = "/api/v1/models/demo/all-minilm-l6-v2-int8/versions/1.0.0/predict"
IRIS = "/api/v1/models/demo/iris-classifier/versions/1.0.0/predict"


@pytest.fixture
def demo(settings, tmp_path, inference_worker):
    settings.VAR_DIR = tmp_path / "var"
    call_command("seed_demo", verbosity=0)
    return User.objects.get(email="member@demo.local")


def test_the_demo_minilm_answers_a_sentence_with_its_384_dimension_embedding(demo):
    client = api_client_for(demo)
    response = client.post(MINILM, {"inputs": {"text": "A man is playing the guitar."}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded"
    [embedding] = body["answer"]["embeddings"]
    assert len(embedding) == 384
    assert abs(float(np.linalg.norm(embedding)) - 1.0) < 1e-3
    # Two sentences about the same thing are closer than an unrelated one (a dot product is the cosine).
    texts = ["A man is playing the guitar.", "Someone plays a guitar.", "The stock market fell sharply today."]
    vectors = np.asarray(client.post(MINILM, {"inputs": {"text": texts}}, format="json").json()["answer"]["embeddings"])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > 0.5 > vectors[0] @ vectors[2]


def test_the_demo_iris_classifier_answers_class_names_with_scores(demo):
    flowers = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]
    response = api_client_for(demo).post(IRIS, {"inputs": {"float_input": flowers}}, format="json")
    assert response.status_code == 200, response.content
    predictions = response.json()["answer"]["predictions"]
    assert [p["label"] for p in predictions] == ["setosa", "versicolor", "virginica"]
    assert set(predictions[0]["scores"]) == {"setosa", "versicolor", "virginica"}
    assert round(predictions[0]["scores"]["setosa"], 2) == 0.98


def test_try_it_on_the_demo_answers_rounded_words_and_numbers_with_the_tensors_folded_away(demo):
    client = Client()
    client.force_login(demo)
    # The forms' own examples, as a visitor who just clicks Run sends them.
    iris = client.post(
        "/models/demo/iris-classifier/versions/1.0.0/try/",
        {"tensor_0": "[[5.1, 3.5, 1.4, 0.2]]", "timeout": "30"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert re.search(r'class="badge[^"]*answer-label">setosa<', iris)
    assert re.search(r'class="font-monospace answer-top-score">0\.98<', iris)
    scores = re.findall(r"<td>(\w+)</td><td class=\"text-end font-monospace\">([^<]+)</td>", iris)
    assert scores[:2] == [("setosa", "0.98"), ("versicolor", "0.02")]
    assert scores[2] in {("virginica", "0.00"), ("virginica", "&lt;0.01")}  # 2 decimals, never 1.4e-07
    assert "<details" in iris and '<details class="mb-2" open' not in iris  # the raw tensors one click away

    minilm = client.post(
        "/models/demo/all-minilm-l6-v2-int8/versions/1.0.0/try/",
        {"text": "GPUX Portal runs ONNX models on GPU workers.", "timeout": "30"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "384 dimensions" in minilm and "Copy vector" in minilm
    head = re.search(r'class="small text-break answer-vector">\[([^\]]+)\]<', minilm).group(1)
    shown = head.split(", ")
    assert len(shown) == 9 and shown[-1] == "…"
    assert all(re.fullmatch(r"-?\d\.\d{4}", value) for value in shown[:-1])
    copied = json.loads(html.unescape(re.search(r'data-copy="([^"]+)"', minilm).group(1)))
    assert len(copied) == 384 and abs(float(np.linalg.norm(copied)) - 1.0) < 1e-3
    assert all(float(f"{value:.7g}") == value for value in copied)  # 7 significant digits, not 17
