"""“Run on a file” on a model's page: a CSV, JSON Lines or .npz file of rows becomes one batch job (the API's
``start_batch_inference``) and the browser goes to the job's page, which follows it and offers the results. Bad
input answers 400 with the reason on its field and writes nothing; the run right is the model's."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.core.jobs import Job
from apps.inference.batch import BATCH_KIND
from apps.inference.models import BatchInference

pytestmark = pytest.mark.django_db

IRIS_CSV = b"a,b,c,d\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_file(client, name: str, content: bytes, **fields):
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post("/models/acme/iris/versions/1.0.0/batch/", {"file": upload, **fields})


def error_under(page: str, field: str) -> str:
    """The error text shown under the form's ``field``."""
    form = page.split('id="run-on-file-form"', 1)[1]
    block = next(part for part in form.split('<div class="mb-3">') if f'name="{field}"' in part)
    return " ".join(piece.split("</div>", 1)[0] for piece in block.split('class="invalid-feedback d-block">')[1:])


def stored_inputs() -> list[str]:
    try:
        return default_storage.listdir("inference/batch-inputs")[1]
    except FileNotFoundError:
        return []


def test_the_model_page_offers_run_on_a_file_with_an_example_of_the_file(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    page = client_for(world.user("member")).get("/models/acme/iris/").content.decode()
    assert 'id="run-on-file-form"' in page and 'action="/models/acme/iris/versions/1.0.0/batch/"' in page
    assert "float_input_0,float_input_1,float_input_2,float_input_3" in page


def test_a_viewer_who_may_not_run_the_model_is_not_offered_the_form_and_gets_403(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    viewer = client_for(world.user("viewer"))
    assert 'id="run-on-file-form"' not in viewer.get("/models/acme/iris/").content.decode()
    assert post_file(viewer, "rows.csv", IRIS_CSV).status_code == 403
    assert not Job.objects.filter(kind=BATCH_KIND).exists()


def test_an_outsider_gets_404_and_anonymous_the_sign_in_page(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    assert post_file(client_for(world.user("outsider")), "rows.csv", IRIS_CSV).status_code == 404
    anonymous = post_file(Client(), "rows.csv", IRIS_CSV)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_a_csv_of_rows_starts_one_batch_job_and_the_browser_goes_to_its_page(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    member = client_for(world.user("member"))
    response = post_file(member, "flowers.csv", IRIS_CSV)
    job = Job.objects.get(kind=BATCH_KIND)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.uuid}/"
    batch = BatchInference.objects.get(job=job)
    assert (batch.rows_total, batch.input_format, batch.input_name) == (3, "csv", "flowers.csv")
    page = member.get(response["Location"]).content.decode()
    assert "Batch prediction" in page and "acme/iris@1.0.0" in page
    assert "<strong>0</strong> of <strong>3</strong> rows done" in page
    assert "inference/batch-inputs" not in page


@pytest.mark.parametrize(
    ("name", "content", "fields", "field", "words"),
    [
        ("rows.csv", b"colour,size\nred,3\n", {}, "file", "names no input of the model"),
        ("rows.csv", b"", {}, "file", "The file is empty"),
        ("rows.txt", IRIS_CSV, {}, "format", "does not say its format"),
        ("rows.csv", IRIS_CSV, {"format": "xlsx"}, "format", "Select a valid choice"),
        ("rows.npz", b"not a zip", {}, "file", "not an .npz"),
    ],
)
def test_a_bad_file_answers_400_on_its_field_and_writes_nothing(
    runnable, world, tmp_path, name, content, fields, field, words
):
    runnable.iris(tmp_path)
    before = stored_inputs()
    response = post_file(client_for(world.user("member")), name, content, **fields)
    assert response.status_code == 400
    page = response.content.decode()
    assert words in page
    assert words in error_under(page, field)
    assert not Job.objects.filter(kind=BATCH_KIND).exists()
    assert not BatchInference.objects.exists()
    assert stored_inputs() == before


def test_without_a_file_the_form_says_the_file_is_required(runnable, world, tmp_path):
    runnable.iris(tmp_path)
    response = client_for(world.user("member")).post("/models/acme/iris/versions/1.0.0/batch/", {})
    assert response.status_code == 400
    assert "This field is required" in error_under(response.content.decode(), "file")
