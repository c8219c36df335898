"""A row whose own input is wrong is that row's error in the results, naming the field and the reason; the other
rows run and the job succeeds with ``rows_failed`` counting them. A row that makes the model itself fail (an index
out of range for a Gather) is pinned on that row: its chunk ran merged, failed, and was run again row by row.

The task runs here in the test process (the worker's code, claim included), on real models."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from apps.core.jobs import JobStatus
from apps.inference.batch import start_batch_inference
from apps.inference.batch_tasks import run_batch
from apps.inference.models import BatchInference
from tests.inference import onnx_models
from tests.inference.batch_support import iris_version, jsonl_records, upload
from tests.marketplace.onnx_fixtures import make_model

pytestmark = pytest.mark.django_db


def run_rows(version, world, name: str, content: bytes, chunk_size: int = 8) -> tuple[BatchInference, list[dict]]:
    job = start_batch_inference(
        version=version,
        uploaded=upload(name, content),
        input_format=None,
        chunk_size=chunk_size,
        user=world.user("member"),
        organization=world.org,
    )
    assert run_batch.run(job.pk) == JobStatus.SUCCEEDED
    batch = BatchInference.objects.get(job=job)
    return batch, jsonl_records(batch.output_file.read())


def test_each_bad_jsonl_row_is_its_own_error_and_the_good_rows_are_answered(runnable, world, tmp_path):
    version = iris_version(runnable, onnx_models.sklearn_iris_path(tmp_path))
    lines = [
        b'{"float_input": [5.1, 3.5, 1.4, 0.2]}',
        b"{not json",
        b"[5.1, 3.5, 1.4, 0.2]",
        b'{"petals": [1, 2]}',
        b'{"float_input": [[1, 2, 3]]}',
        b'{"float_input": [[6.3, "NaN", 4.9, 1.5]]}',
        b'{"text": "a pretty blue flower"}',
        b'{"inputs": {"float_input": [[6.7, 3.0, 5.2, 2.3]]}}',
    ]
    batch, records = run_rows(version, world, "rows.jsonl", b"\n".join(lines) + b"\n")

    assert (batch.rows_done, batch.rows_failed) == (8, 6)
    assert [record["row"] for record in records] == list(range(8))
    assert records[0]["answer"]["predictions"][0]["label"] == "setosa"
    assert records[7]["answer"]["predictions"][0]["label"] == "virginica"
    assert records[1]["error"]["row"][0].startswith("not JSON")
    assert records[2]["error"] == {"row": ["expected a JSON object, received a list"]}
    assert "unknown input" in records[3]["error"]["inputs.petals"][0]
    assert "expected shape [?, 4]" in " ".join(records[4]["error"]["inputs.float_input"])
    assert "NaN" in records[5]["error"]["inputs.float_input"][0]
    assert "does not read text" in records[6]["error"]["inputs.text"][0]


def gather_model_bytes() -> bytes:
    """indices int64 [batch] -> Gather over [10, 20, 30, 40, 50] -> value float [batch]: an index past 4 makes
    ONNX Runtime fail the run."""
    data = numpy_helper.from_array(np.asarray([10, 20, 30, 40, 50], dtype=np.float32), name="data")
    node = helper.make_node("Gather", ["data", "indices"], ["value"], axis=0)
    model = make_model(
        [node],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["batch"])],
        initializers=[data],
    )
    return model.SerializeToString()


def test_a_row_that_makes_the_model_fail_is_pinned_on_that_row_and_the_others_of_its_chunk_run(runnable, world):
    version = runnable.version("lookup", {"model.onnx": gather_model_bytes()}, None)
    content = b"indices,note\n0,first\n2,second\n7,out of range\n4,last\n1,next chunk\n"
    batch, records = run_rows(version, world, "lookups.csv", content, chunk_size=4)

    assert (batch.rows_done, batch.rows_failed) == (5, 1)
    assert [record.get("outputs", {}).get("value") for record in records] == [[10.0], [30.0], None, [50.0], [20.0]]
    assert list(records[2]["error"]) == ["run"]
    assert "indices element out of data bounds, idx=7" in records[2]["error"]["run"][0]
