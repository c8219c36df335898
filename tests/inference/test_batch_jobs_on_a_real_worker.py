"""Batch jobs end to end: a file through the API, a real prefork worker on Redis running it in chunks, the job's
progress and rows in the API, the results file downloaded and read back."""

from __future__ import annotations

import io

import numpy as np
import pytest

from apps.core.jobs import Job, JobStatus
from tests.conftest import api_client_for
from tests.inference import onnx_models
from tests.inference.batch_support import (
    accuracy,
    batch_url,
    body_of,
    iris_csv,
    iris_data,
    iris_version,
    job_url,
    jsonl_records,
    npz_arrays,
    upload,
)
from tests.jobs_support import job_in, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    return onnx_models.sklearn_iris_path(tmp_path_factory.mktemp("iris"))


@pytest.fixture
def member(world):
    return api_client_for(world.user("member"))


def run_batch(client, version, name: str, content: bytes, **fields) -> dict:
    """Send the file, wait for the job to finish, answer the job as the API shows it."""
    response = client.post(batch_url(version), {"file": upload(name, content), **fields}, format="multipart")
    assert response.status_code == 202, response.content
    job = Job.objects.get(uuid=response.json()["job"])
    wait_for(job_in(job, JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=90, what="the batch job to finish")
    detail = client.get(job_url(job.uuid))
    assert detail.status_code == 200
    return detail.json()


def download(client, body: dict) -> bytes:
    response = client.get(body["download_url"])
    assert response.status_code == 200
    assert response["X-Results-Complete"] == "true"
    return body_of(response)


def test_an_iris_csv_of_150_rows_gives_150_predictions_matching_the_true_species(
    runnable, inference_worker, member, iris_model
):
    version = iris_version(runnable, iris_model)
    _features, labels = iris_data()
    body = run_batch(member, version, "iris.csv", iris_csv(), chunk_size=32)

    assert body["status"] == "succeeded", body["error"]
    assert (body["progress"], body["rows_total"], body["rows_done"], body["rows_failed"]) == (1.0, 150, 150, 0)
    assert body["provider"] == "CPUExecutionProvider"
    assert body["results_complete"] is True
    records = jsonl_records(download(member, body))
    assert [record["row"] for record in records] == list(range(150))
    assert accuracy(records, labels) > 0.9
    assert np.asarray(records[0]["outputs"]["probabilities"]).shape == (1, 3)
    assert Job.objects.get(uuid=body["job"]).progress == 1.0


def test_a_row_with_a_bad_value_is_that_rows_error_and_the_job_still_succeeds(
    runnable, inference_worker, member, iris_model
):
    version = iris_version(runnable, iris_model)
    body = run_batch(member, version, "iris.csv", iris_csv(replace={3: "5.1,abc,1.4,0.2"}), chunk_size=16)

    assert body["status"] == "succeeded", body["error"]
    assert (body["rows_done"], body["rows_failed"]) == (150, 1)
    records = jsonl_records(download(member, body))
    assert len(records) == 150
    assert records[3] == {
        "row": 3,
        "error": {"inputs.float_input": ["column 2 (“sepal width (cm)”): “abc” is not a number"]},
    }
    assert all("answer" in record for index, record in enumerate(records) if index != 3)


def test_a_minilm_jsonl_of_texts_gives_a_normalized_embedding_per_text(runnable, inference_worker, member):
    version = runnable.minilm()
    texts = [
        "I play the guitar.",
        "She plays the electric guitar in a band.",
        "The invoice is due on Friday.",
        "A violin has four strings.",
        "Tax returns are filed in April.",
    ]
    lines = [
        f'{{"text": "{text}"}}' if index % 2 else f'{{"inputs": {{"text": "{text}"}}}}'
        for index, text in enumerate(texts)
    ]
    body = run_batch(
        member, version, "texts.jsonl", ("\n".join(lines) + "\n").encode(), chunk_size=3, include_outputs="false"
    )

    assert body["status"] == "succeeded", body["error"]
    assert (body["rows_done"], body["rows_failed"]) == (5, 0)
    records = jsonl_records(download(member, body))
    assert [record["row"] for record in records] == [0, 1, 2, 3, 4]
    assert all("outputs" not in record for record in records)  # include_outputs=false: the answers only
    embeddings = np.asarray([record["answer"]["embeddings"][0] for record in records])
    assert embeddings.shape == (5, 384)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-3)
    similar, unrelated = float(embeddings[0] @ embeddings[1]), float(embeddings[0] @ embeddings[2])
    assert similar > unrelated + 0.2


def test_an_npz_of_iris_rows_gives_an_npz_of_stacked_outputs_with_the_failed_row_marked(
    runnable, inference_worker, member, iris_model
):
    version = iris_version(runnable, iris_model)
    features, labels = iris_data()
    rows = features.astype(np.float32)
    rows[7, 2] = np.nan
    buffer = io.BytesIO()
    np.savez(buffer, float_input=rows)
    body = run_batch(member, version, "iris.npz", buffer.getvalue(), chunk_size=40)

    assert body["status"] == "succeeded", body["error"]
    assert (body["input_format"], body["rows_done"], body["rows_failed"]) == ("npz", 150, 1)
    results = npz_arrays(download(member, body))
    assert results["label"].shape == (150,) and results["probabilities"].shape == (150, 3)
    assert results["row_failed"].tolist() == [index == 7 for index in range(150)]
    assert results["failed_rows"].tolist() == [7]
    assert "inputs.float_input" in results["failed_errors"][0] and "NaN" in results["failed_errors"][0]
    assert np.isnan(results["probabilities"][7]).all()
    right = (results["label"] == labels) & ~results["row_failed"]
    assert right.sum() / 149 > 0.9
