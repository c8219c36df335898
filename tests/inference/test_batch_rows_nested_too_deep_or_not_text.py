"""Rows of a batch file nested past INPUT_MAX_NESTING_DEPTH, or holding a lone surrogate (a ``\\ud83d`` escape),
are refused like any bad row: the first at upload, naming the file; the others as their own row's error while
the good rows are answered. Before, a deep row exhausted Python's recursion (a 500 at upload, a failed job on the
worker). The task runs here in the test process, on real models."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.core.jobs import JobStatus
from apps.inference.batch import inspect_batch_file, start_batch_inference
from apps.inference.batch_tasks import run_batch
from apps.inference.models import BatchInference
from tests.inference import onnx_models
from tests.inference.batch_support import iris_version, jsonl_records, upload
from tests.inference.test_batch_row_errors_name_the_row_and_the_field import gather_model_bytes

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000
GOOD = b'{"float_input": [5.1, 3.5, 1.4, 0.2]}'


def run_rows(version, world, name: str, content: bytes) -> tuple[BatchInference, list[dict]]:
    job = start_batch_inference(
        version=version,
        uploaded=upload(name, content),
        input_format=None,
        chunk_size=8,
        user=world.user("member"),
        organization=world.org,
    )
    assert run_batch.run(job.pk) == JobStatus.SUCCEEDED
    batch = BatchInference.objects.get(job=job)
    return batch, jsonl_records(batch.output_file.read())


@pytest.mark.parametrize(
    ("first_row", "reason"),
    [
        (('{"float_input": ' + DEEP + "}").encode(), "nested deeper than 64 levels"),
        (b'{"float_input": "\\ud83d"}', "float_input: holds a lone UTF-16 surrogate"),
    ],
    ids=["nested", "lone-surrogate"],
)
def test_a_first_row_nested_too_deep_or_not_text_is_refused_at_upload_naming_the_file(
    runnable, world, tmp_path, first_row, reason
):
    version = iris_version(runnable, onnx_models.sklearn_iris_path(tmp_path))
    with pytest.raises(ValidationError) as caught:
        inspect_batch_file(version, upload("rows.jsonl", first_row + b"\n" + GOOD + b"\n"), "jsonl")
    assert list(caught.value.message_dict) == ["file"]
    assert caught.value.message_dict["file"][0].startswith("Row 0 is not usable: ")
    assert reason in caught.value.message_dict["file"][0]


def test_later_jsonl_rows_nested_too_deep_or_not_text_are_their_own_errors(runnable, world, tmp_path):
    version = iris_version(runnable, onnx_models.sklearn_iris_path(tmp_path))
    lines = [GOOD, ('{"float_input": ' + DEEP + "}").encode(), b'{"float_input": [1, 2, 3, "\\udc00"]}', GOOD]

    batch, records = run_rows(version, world, "rows.jsonl", b"\n".join(lines) + b"\n")

    assert (batch.rows_done, batch.rows_failed) == (4, 2)
    assert records[0]["answer"]["predictions"][0]["label"] == "setosa"
    assert "nested deeper than 64 levels" in records[1]["error"]["row"][0]
    assert records[2]["error"]["row"][0].startswith("float_input[3]: holds a lone UTF-16 surrogate")
    assert "answer" in records[3]


def test_a_csv_cell_nested_too_deep_is_its_rows_error(runnable, world):
    version = runnable.version("lookup", {"model.onnx": gather_model_bytes()}, None)
    content = f"indices,note\n0,first\n{DEEP},deep\n4,last\n".encode()

    batch, records = run_rows(version, world, "lookups.csv", content)

    assert (batch.rows_done, batch.rows_failed) == (3, 1)
    assert "nested deeper than 64 levels" in records[1]["error"]["row"][0]
    assert [record.get("outputs", {}).get("value") for record in records] == [[10.0], None, [50.0]]
