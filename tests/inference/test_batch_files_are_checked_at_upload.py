"""A batch file is checked against the model's inputs and its rows counted at upload, streaming it: what can be
known up front is refused there, naming the field and the reason. No database: the version is the signature and
manifest of real models (the skl2onnx iris classifier, MiniLM)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from apps.inference.batch import inspect_batch_file, resolve_format
from apps.marketplace.models import ModelVersion, ValidationStatus
from tests.inference import onnx_models
from tests.inference.batch_support import iris_csv, upload


@pytest.fixture
def iris(tmp_path) -> ModelVersion:
    signature = onnx_models.signature_of(onnx_models.sklearn_iris_path(tmp_path))
    return ModelVersion(
        label="1.0.0",
        signature=signature,
        onnx_info={"manifest": onnx_models.IRIS_MANIFEST},
        validation_status=ValidationStatus.PASSED,
    )


@pytest.fixture
def minilm() -> ModelVersion:
    signature = onnx_models.signature_of(onnx_models.minilm_path())
    return ModelVersion(label="1.0.0", signature=signature, onnx_info={"manifest": onnx_models.MINILM_MANIFEST})


def refusal(version, name: str, content: bytes, fmt: str) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        inspect_batch_file(version, upload(name, content), fmt)
    return caught.value.message_dict


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_jsonl_file_counts_its_non_blank_lines_as_rows(iris):
    content = b'{"float_input": [5.1, 3.5, 1.4, 0.2]}\n\n{"inputs": {"float_input": [[6, 3, 5, 2]]}}\n   \n{"x": 1}\n'
    inspected = inspect_batch_file(iris, upload("rows.jsonl", content), "jsonl")
    assert (inspected.input_format, inspected.rows) == ("jsonl", 3)


def test_a_csv_of_iris_measurements_reads_each_row_as_the_four_numbers_of_the_one_input(iris):
    inspected = inspect_batch_file(iris, upload("iris.csv", iris_csv()), "csv")
    assert inspected.rows == 150
    assert inspected.plan["mode"] == "vector"
    assert inspected.plan["input"] == "float_input"


def test_a_csv_cell_with_a_newline_inside_quotes_is_one_row(minilm):
    content = b'id,text\n1,"two\nlines"\n2,one line\n'
    inspected = inspect_batch_file(minilm, upload("texts.csv", content), "csv")
    assert inspected.rows == 2
    assert inspected.plan == {"mode": "readable", "key": "text", "column": 1, "ignored": ["id"], "width": 2}


def test_csv_columns_named_after_inputs_are_used_and_the_others_listed_as_ignored(minilm):
    content = b"input_ids,attention_mask,token_type_ids,note\n[[101,102]],[[1,1]],[[0,0]],x\n"
    inspected = inspect_batch_file(minilm, upload("tokens.csv", content), "csv")
    assert inspected.plan["mode"] == "columns"
    assert inspected.plan["ignored"] == ["note"]


def test_a_csv_naming_some_inputs_but_not_all_names_the_missing_ones(minilm):
    errors = refusal(minilm, "tokens.csv", b"input_ids\n[[101,102]]\n", "csv")
    assert "attention_mask, token_type_ids" in errors["file"][0]


def test_a_csv_whose_header_names_no_input_is_refused_naming_the_file_and_what_would_do(iris):
    errors = refusal(iris, "iris.csv", b"a,b,c\n1,2,3\n", "csv")
    message = errors["file"][0]
    assert "names no input of the model" in message
    assert "float_input" in message and "exactly 4 columns" in message


def test_an_empty_file_is_refused(iris):
    assert "empty" in refusal(iris, "rows.jsonl", b"", "jsonl")["file"][0]


def test_a_csv_with_a_header_and_no_rows_is_refused(iris):
    assert "a header and no rows" in refusal(iris, "iris.csv", b"a,b,c,d\n\n", "csv")["file"][0]


def test_a_file_over_the_size_limit_is_refused_with_both_sizes(iris, settings):
    settings.INFERENCE_MAX_BATCH_FILE_BYTES = 100
    message = refusal(iris, "iris.csv", iris_csv(), "csv")["file"][0]
    assert "over the limit of 100 bytes" in message


def test_csv_content_sent_as_jsonl_is_refused_saying_it_looks_like_csv(iris):
    message = refusal(iris, "iris.jsonl", iris_csv(), "jsonl")["file"][0]
    assert "Row 0 is not JSON" in message and "format = csv" in message


def test_json_lines_sent_as_csv_are_refused_saying_they_look_like_jsonl(iris):
    message = refusal(iris, "rows.csv", b'{"float_input": [1, 2, 3, 4]}\n', "csv")["file"][0]
    assert "JSON Lines" in message and "format = jsonl" in message


def test_an_npz_sent_as_jsonl_is_refused_saying_it_is_a_zip(iris):
    content = npz_bytes(float_input=np.zeros((2, 4), dtype=np.float32))
    assert "zip archive" in refusal(iris, "rows.jsonl", content, "jsonl")["file"][0]


def test_text_sent_as_npz_is_refused_saying_it_is_no_zip(iris):
    assert "not an .npz" in refusal(iris, "rows.npz", iris_csv(), "npz")["file"][0]


def test_a_jsonl_whose_first_row_names_no_input_is_refused_naming_what_it_has(iris):
    message = refusal(iris, "rows.jsonl", b'{"petals": [1, 2]}\n', "jsonl")["file"][0]
    assert "petals" in message and "float_input" in message


def test_a_csv_that_is_not_utf8_is_refused_naming_the_line(iris):
    content = "a,b,c,d\n1,2,3,4\n5,6,7,\xe9\n".encode("latin-1")
    message = refusal(iris, "rows.csv", content, "csv")["file"][0]
    assert "line 3 is not UTF-8" in message


def test_npz_arrays_are_counted_along_axis_0(iris):
    content = npz_bytes(float_input=np.ones((7, 4), dtype=np.float32))
    inspected = inspect_batch_file(iris, upload("rows.npz", content), "npz")
    assert inspected.rows == 7
    assert inspected.plan == {"arrays": {"float_input": "slice"}}


def test_npz_arrays_of_different_lengths_are_refused_naming_both(minilm):
    content = npz_bytes(
        input_ids=np.ones((5, 8), dtype=np.int64),
        attention_mask=np.ones((5, 8), dtype=np.int64),
        token_type_ids=np.zeros((3, 8), dtype=np.int64),
    )
    errors = refusal(minilm, "tokens.npz", content, "npz")
    assert errors["file.token_type_ids"] == [
        "3 rows along axis 0, but file.input_ids has 5; every array needs the same number of rows"
    ]


def test_an_npz_with_an_unknown_array_and_a_missing_one_names_both(iris):
    errors = refusal(iris, "rows.npz", npz_bytes(petals=np.ones((2, 4))), "npz")
    assert "unknown input" in errors["file.petals"][0]
    assert "required input is missing" in errors["file.float_input"][0]


def test_an_npz_array_that_cannot_hold_rows_of_the_input_is_refused_with_both_shapes(iris):
    errors = refusal(iris, "rows.npz", npz_bytes(float_input=np.ones((2, 4, 1, 1))), "npz")
    assert errors["file.float_input"] == [
        "shape [2, 4, 1, 1] does not fit the input's shape [?, 4] with rows along axis 0"
    ]


def test_the_format_comes_from_the_file_name_unless_named():
    assert resolve_format(None, "rows.NDJSON") == "jsonl"
    assert resolve_format(None, "iris.csv") == "csv"
    assert resolve_format("npz", "whatever.bin") == "npz"
    with pytest.raises(ValidationError) as caught:
        resolve_format(None, "rows.txt")
    assert "format" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        resolve_format("parquet", "rows.parquet")
    assert "“parquet” is not a batch format" in caught.value.message_dict["format"][0]
