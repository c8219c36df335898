"""``POST .../versions/{label}/batch``: a good file answers 202 with the job (rows counted, queued, its URLs); a bad
one answers 400 naming the field and the reason, and leaves nothing written (no job, no stored file)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage

from apps.core.jobs import Job
from apps.inference.batch import BATCH_KIND
from apps.inference.models import BatchInference
from apps.marketplace.models import ModelVersion, ValidationStatus
from tests.conftest import api_client_for
from tests.inference import onnx_models
from tests.inference.batch_support import batch_url, iris_csv, iris_version, job_url, upload

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    return onnx_models.sklearn_iris_path(tmp_path_factory.mktemp("iris"))


@pytest.fixture
def iris(runnable, iris_model):
    return iris_version(runnable, iris_model)


@pytest.fixture
def member(world):
    return api_client_for(world.user("member"))


def post(client, version, **fields):
    return client.post(batch_url(version), fields, format="multipart")


def stored_inputs() -> set[str]:
    # The media folder is the module's (shared with its other tests): compare what is there before and after.
    if not default_storage.exists("inference/batch-inputs"):
        return set()
    return set(default_storage.listdir("inference/batch-inputs")[1])


@pytest.fixture
def nothing_written():
    before = stored_inputs()

    def check() -> bool:
        jobs = Job.objects.filter(kind=BATCH_KIND).exists() or BatchInference.objects.exists()
        return not jobs and stored_inputs() == before

    return check


def test_a_csv_of_iris_rows_answers_202_with_the_counted_queued_job(iris, member, world):
    response = post(member, iris, file=upload("iris.csv", iris_csv()), chunk_size=25)
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == body["url"]
    assert body["status"] == "queued"
    assert (body["rows_total"], body["rows_done"], body["rows_failed"], body["chunk_size"]) == (150, 0, 0, 25)
    assert (body["input_format"], body["input_name"], body["progress"]) == ("csv", "iris.csv", 0.0)
    assert body["model"] == f"{iris.model}" and body["version"] == "1.0.0"
    assert body["download_url"].endswith(f"/api/v1/batch-jobs/{body['job']}/results")
    job = Job.objects.get(uuid=body["job"])
    assert (job.kind, job.queue, job.creator) == (BATCH_KIND, "inference.cpu", world.user("member"))
    assert job.batch.input_file.read().startswith(b"sepal length")

    detail = member.get(job_url(job.uuid))
    assert detail.status_code == 200 and detail.json()["rows_total"] == 150
    listed = member.get("/api/v1/batch-jobs/")
    assert [item["job"] for item in listed.json()["results"]] == [body["job"]]


def test_no_file_answers_400_on_file(iris, member, nothing_written):
    response = post(member, iris, format="csv")
    assert response.status_code == 400
    assert "file" in response.json()
    assert nothing_written()


def test_an_empty_file_answers_400_on_file(iris, member, nothing_written):
    response = post(member, iris, file=upload("iris.csv", b""))
    assert response.status_code == 400
    assert response.json()["file"] == ["The file is empty; send at least one row."]
    assert nothing_written()


def test_a_file_name_without_a_format_answers_400_on_format(iris, member, nothing_written):
    response = post(member, iris, file=upload("rows.txt", iris_csv()))
    assert response.status_code == 400
    assert "does not say its format" in response.json()["format"][0]
    assert nothing_written()


def test_a_chunk_size_out_of_range_answers_400_on_chunk_size(iris, member, nothing_written):
    response = post(member, iris, file=upload("iris.csv", iris_csv()), chunk_size=0)
    assert response.status_code == 400
    assert "chunk_size" in response.json()
    assert nothing_written()


def test_a_csv_header_naming_no_input_answers_400_on_file_with_its_code(iris, member, nothing_written):
    response = post(member, iris, file=upload("iris.csv", b"species,colour\nsetosa,blue\n"))
    assert response.status_code == 400
    body = response.json()
    assert "names no input of the model" in body["file"][0]
    assert body["codes"]["file"] == ["no_input"]
    assert nothing_written()


def test_npz_arrays_of_different_lengths_answer_400_on_the_shorter_array(runnable, member, nothing_written):
    version = runnable.minilm()
    buffer = io.BytesIO()
    np.savez(
        buffer,
        input_ids=np.ones((4, 6), dtype=np.int64),
        attention_mask=np.ones((2, 6), dtype=np.int64),
        token_type_ids=np.zeros((4, 6), dtype=np.int64),
    )
    response = post(member, version, file=upload("tokens.npz", buffer.getvalue()))
    assert response.status_code == 400
    assert response.json()["file.attention_mask"][0].startswith("2 rows along axis 0, but file.input_ids has 4")
    assert nothing_written()


def test_a_request_over_the_size_limit_answers_400_before_its_body_is_read(iris, member, settings, nothing_written):
    settings.INFERENCE_MAX_BATCH_FILE_BYTES = 1000
    big = iris_csv() * 60  # ~160 kB: past the limit and the multipart slack
    response = post(member, iris, file=upload("iris.csv", big))
    assert response.status_code == 400
    assert "over the batch file limit of 1000" in response.json()["file"][0]
    assert nothing_written()


def test_a_version_that_has_not_passed_validation_answers_409(iris, member, nothing_written):
    ModelVersion.objects.filter(pk=iris.pk).update(validation_status=ValidationStatus.PENDING)
    response = post(member, iris, file=upload("iris.csv", iris_csv()))
    assert response.status_code == 409
    assert "has not passed validation" in response.json()["detail"]
    assert nothing_written()
