"""String tensors run, end to end on a real prefork worker: a model whose input and one output are strings
(StringNormalizer, then a LabelEncoder of the words) answers through the prediction API (synchronous, and read
back later), KServe v2 ``BYTES`` tensors (binary and JSON, through tritonclient), a pipeline that hands a string
output to the next step, and batch files (JSONL and ``.npz``).

The inputs travel from the web process to the worker, and the outputs back, in stored ``.npz`` bytes that are
never unpickled: a string tensor there must not be a pickled object array (it was, and every string input
answered 422 "Object arrays cannot be loaded").
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import tritonclient.http as triton

from apps.core.jobs import Job, JobStatus
from apps.inference.models import InferenceJob
from apps.inference.pipelines import save_pipeline
from tests.conftest import api_client_for
from tests.factories import make_token
from tests.inference.batch_support import batch_url, body_of, job_url, jsonl_records, npz_arrays, upload
from tests.inference.edge_models import TEXT_MANIFEST, text_model_bytes
from tests.inference.pipeline_models import ref
from tests.jobs_support import job_in, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WORDS = ["Cat", "DOG", "Émile", ""]
LOWERED = ["cat", "dog", "émile", ""]
IDS = [0, 1, -1, -1]


def words_version(runnable, name: str = "words"):
    return runnable.version(name, {"model.onnx": text_model_bytes()}, TEXT_MANIFEST)


def predict_url(version) -> str:
    return f"/api/v1/models/{version.model.organization.slug}/{version.model.name}/versions/{version.label}/predict"


@pytest.mark.parametrize("online", [True, False], ids=["online", "durable"])
def test_a_string_input_runs_and_answers_its_string_output(runnable, inference_worker, world, settings, online):
    settings.INFERENCE_ONLINE_SERVING = online
    version = words_version(runnable)
    client = api_client_for(world.user("member"))

    response = client.post(predict_url(version), {"inputs": {"text": WORDS}}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded", body
    assert body["outputs"]["lowered"] == LOWERED
    assert body["outputs"]["ids"] == IDS
    if online:
        return
    stored = InferenceJob.objects.get(job__uuid=body["job"])
    assert b"pickle" not in bytes(stored.inputs) and b"pickle" not in bytes(stored.outputs)
    later = client.get(f"/api/v1/predictions/{body['job']}/")
    assert later.status_code == 200
    assert later.json()["outputs"] == {"lowered": LOWERED, "ids": IDS}


def test_an_asynchronous_string_prediction_is_read_back_with_its_outputs(runnable, inference_worker, world):
    version = words_version(runnable)
    client = api_client_for(world.user("member"))

    response = client.post(predict_url(version) + "?async=true", {"inputs": {"text": ["Dog"]}}, format="json")

    assert response.status_code == 202, response.content
    job = Job.objects.get(uuid=response.json()["job"])
    wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=60, what="the prediction to finish")
    later = client.get(f"/api/v1/predictions/{job.uuid}/")
    assert later.json()["status"] == "succeeded", later.json()
    assert later.json()["outputs"] == {"lowered": ["dog"], "ids": [1]}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_kserve_bytes_tensors_go_in_and_come_out(runnable, inference_worker, world, live_server, binary):
    words_version(runnable)
    text = triton.InferInput("text", [len(WORDS)], "BYTES")
    text.set_data_from_numpy(np.asarray(WORDS, dtype=object), binary_data=binary)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("lowered", "ids")]
    headers = {"Authorization": f"Bearer {make_token(world.user('member'))}"}

    with triton.InferenceServerClient(url=live_server.url.removeprefix("http://")) as client:
        result = client.infer("acme--words", [text], outputs=outputs, headers=headers)

    assert [item.decode() if isinstance(item, bytes) else item for item in result.as_numpy("lowered")] == LOWERED
    assert result.as_numpy("ids").tolist() == IDS


def test_a_pipeline_hands_a_string_output_to_the_next_step(runnable, inference_worker, world):
    first = words_version(runnable, "words")
    second = words_version(runnable, "words-again")
    save_pipeline(
        organization=world.org,
        slug="twice",
        steps=[
            {"name": "lower", "version": ref(first), "inputs": {"text": "input.text"}},
            {"name": "again", "version": ref(second), "inputs": {"text": "lower.lowered"}},
        ],
        outputs={"lowered": "again.lowered", "ids": "again.ids"},
        actor=world.user("member"),
    )
    client = api_client_for(world.user("member"))

    response = client.post("/api/v1/orgs/acme/pipelines/twice/run", {"inputs": {"text": WORDS}}, format="json")

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["status"] == "succeeded", answer
    assert answer["outputs"] == {"lowered": LOWERED, "ids": IDS}
    assert client.get(answer["url"]).json()["outputs"] == {"lowered": LOWERED, "ids": IDS}


def run_batch(client, version, name: str, content: bytes) -> dict:
    response = client.post(batch_url(version), {"file": upload(name, content)}, format="multipart")
    assert response.status_code == 202, response.content
    job = Job.objects.get(uuid=response.json()["job"])
    wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=90, what="the batch job to finish")
    return client.get(job_url(job.uuid)).json()


def test_a_jsonl_batch_of_words_answers_each_row(runnable, inference_worker, world):
    version = words_version(runnable)
    client = api_client_for(world.user("member"))
    lines = "".join(f'{{"text": ["{word}"]}}\n' for word in WORDS).encode()

    body = run_batch(client, version, "words.jsonl", lines)

    assert body["status"] == "succeeded", body["error"]
    assert (body["rows_done"], body["rows_failed"]) == (4, 0)
    records = jsonl_records(body_of(client.get(body["download_url"])))
    assert [record["outputs"]["lowered"] for record in records] == [[word] for word in LOWERED]
    assert [record["outputs"]["ids"] for record in records] == [[value] for value in IDS]


def test_an_npz_batch_of_words_answers_an_npz_of_words(runnable, inference_worker, world):
    version = words_version(runnable)
    client = api_client_for(world.user("member"))
    buffer = io.BytesIO()
    np.savez(buffer, text=np.asarray(WORDS).reshape(4, 1))  # a <U array: no pickle needed

    body = run_batch(client, version, "words.npz", buffer.getvalue())

    assert body["status"] == "succeeded", body["error"]
    results = npz_arrays(body_of(client.get(body["download_url"])))
    assert results["lowered"].ravel().tolist() == LOWERED
    assert results["ids"].ravel().tolist() == IDS
