"""The v2 wire format on its own (no database, no server): v2 model names, signatures in the protocol's terms,
requests read into the arrays the model takes (JSON flat or nested, binary little-endian, BOOL, BYTES), and
answers that ``tritonclient``'s own parser reads back."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from rest_framework.exceptions import ValidationError
from tritonclient.http import InferResult

from apps.inference.api.kserve import (
    InferRequest,
    RequestedOutput,
    V2Name,
    infer_response,
    parse_v2_name,
    read_infer_request,
    tensor_metadata,
)

SIGNATURE = {
    "inputs": [
        {"name": "x", "elem_type": "float32", "shape": ["batch", 2]},
        {"name": "flags", "elem_type": "bool", "shape": ["batch"]},
        {"name": "words", "elem_type": "string", "shape": ["batch"]},
        {"name": "ids", "elem_type": "int64", "shape": [None, 3]},
    ],
    "outputs": [
        {"name": "y", "elem_type": "float32", "shape": ["batch", 2]},
        {"name": "probabilities", "elem_type": "seq(map(int64,tensor(float32)))", "shape": None},
    ],
}


def request(inputs: list[dict], binary: bytes = b"", **extra) -> InferRequest:
    header = json.dumps({"inputs": inputs, **extra}).encode()
    return read_infer_request(header + binary, str(len(header)) if binary else None, SIGNATURE)


def json_inputs(**changes) -> list[dict]:
    inputs = {
        "x": {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]},
        "flags": {"name": "flags", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        "words": {"name": "words", "shape": [2], "datatype": "BYTES", "data": ["guitar", "bass"]},
        "ids": {"name": "ids", "shape": [2, 3], "datatype": "INT64", "data": [1.0, 2, 3, 4, 5, 6]},
    }
    for name, change in changes.items():
        inputs[name] = {**inputs[name], **change}
    return list(inputs.values())


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("acme--iris", V2Name("acme", "iris", deployment=False)),
        ("alice--minilm.v2", V2Name("alice", "minilm.v2", deployment=False)),
        ("acme--deployments--prod", V2Name("acme", "prod", deployment=True)),
        ("acme--deployments", V2Name("acme", "deployments", deployment=False)),  # a model named "deployments"
        ("iris", None),
        ("acme--", None),
        ("acme--x--prod", None),
        ("--iris", None),
    ],
)
def test_a_v2_name_is_an_owner_and_a_model_or_a_deployment(text, parsed):
    assert parse_v2_name(text) == parsed


def test_signatures_are_described_with_protocol_datatypes_and_minus_one_for_dynamic_dimensions():
    assert tensor_metadata(SIGNATURE["inputs"]) == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "flags", "datatype": "BOOL", "shape": [-1]},
        {"name": "words", "datatype": "BYTES", "shape": [-1]},
        {"name": "ids", "datatype": "INT64", "shape": [-1, 3]},
    ]
    # a sequence of maps is no tensor: a v2 client can neither send nor read it
    assert tensor_metadata(SIGNATURE["outputs"]) == [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]
    assert tensor_metadata([{"name": "o", "elem_type": "optional(tensor(int8))", "shape": None}]) == [
        {"name": "o", "datatype": "INT8", "shape": [-1]}
    ]


def test_json_data_flat_or_nested_becomes_the_models_arrays_row_major():
    arrays = request(json_inputs()).arrays
    assert arrays["x"].dtype == np.float32 and arrays["x"].tolist() == [[1, 2], [3, 4]]
    assert arrays["flags"].dtype == np.bool_ and arrays["flags"].tolist() == [True, False]
    assert arrays["words"].tolist() == ["guitar", "bass"]
    assert arrays["ids"].dtype == np.int64 and arrays["ids"].tolist() == [[1, 2, 3], [4, 5, 6]]


def test_binary_inputs_are_read_in_order_little_endian_with_length_prefixed_bytes():
    x = np.asarray([[1.5, -2], [3, 4]], dtype="<f4").tobytes()
    flags = np.asarray([False, True]).tobytes()
    words = b"".join(struct.pack("<I", len(word)) + word for word in (b"gitarre", "bäss".encode()))
    ids = np.arange(6, dtype="<i8").tobytes()
    inputs = [
        {"name": "x", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": len(x)}},
        {"name": "flags", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": len(flags)}},
        {"name": "words", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(words)}},
        {"name": "ids", "shape": [2, 3], "datatype": "INT64", "parameters": {"binary_data_size": len(ids)}},
    ]
    arrays = request(inputs, x + flags + words + ids).arrays
    assert arrays["x"].tolist() == [[1.5, -2], [3, 4]]
    assert arrays["flags"].tolist() == [False, True]
    assert arrays["words"].tolist() == ["gitarre", "bäss"]
    assert arrays["ids"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_every_bad_input_is_named_in_one_answer():
    with pytest.raises(ValidationError) as refused:
        request(json_inputs(x={"datatype": "FP64"}, ids={"data": [1.5, 2, 3, 4, 5, 6]}, flags={"data": [1, 2]}))
    errors = {key: [str(message) for message in messages] for key, messages in refused.value.detail.items()}
    assert errors == {
        "inputs.x": ["the model wants FP32, received datatype FP64"],
        "inputs.ids": ["expected int64, received float64 with non-integral values"],
        "inputs.flags": ["expected bool, received int64 with values other than 0 and 1"],
    }


def test_an_output_that_is_not_a_tensor_cannot_be_asked_for_and_says_why():
    with pytest.raises(ValidationError) as refused:
        request(json_inputs(), outputs=[{"name": "probabilities"}])
    assert [str(message) for message in refused.value.detail["outputs.probabilities"]] == [
        "a seq(map(int64,tensor(float32))) is not a tensor, which this protocol cannot carry; the model's tensor "
        "outputs are y"
    ]


def test_output_choices_and_the_timeout_are_read_from_the_parameters():
    read = request(
        json_inputs(),
        outputs=[{"name": "y", "parameters": {"binary_data": True}}],
        parameters={"binary_data_output": False, "timeout": 2_500_000, "priority": 1},
    )
    assert read.outputs == [RequestedOutput("y", True)]
    assert read.binary_output is False
    assert read.timeout == 2.5


def test_an_answer_with_binary_outputs_reads_back_through_tritonclients_parser():
    outputs = {
        "y": np.asarray([[0.25, -1], [2, 3]], dtype=np.float32),
        "flags": np.asarray([True, False, True]),
        "words": np.asarray(["gitarre", "bäss"], dtype=object),
        "ids": np.asarray([[7, -8]], dtype=np.int64),
    }
    asked = InferRequest(
        id="r1",
        arrays={},
        outputs=[RequestedOutput(name, name != "ids") for name in outputs],
        binary_output=False,
    )
    response = infer_response(
        model_name="acme--m", model_version="1", request=asked, outputs=outputs, order=[], parameters={"job": "j"}
    )
    header_length = int(response["Inference-Header-Content-Length"])
    result = InferResult.from_response_body(response.content, header_length=header_length)
    assert result.as_numpy("y").tolist() == [[0.25, -1], [2, 3]]
    assert result.as_numpy("flags").tolist() == [True, False, True]
    assert [item.decode() for item in result.as_numpy("words").tolist()] == ["gitarre", "bäss"]
    assert result.as_numpy("ids").tolist() == [[7, -8]]
    answer = result.get_response()
    assert answer["id"] == "r1" and answer["parameters"] == {"job": "j"}
    assert [output["datatype"] for output in answer["outputs"]] == ["FP32", "BOOL", "BYTES", "INT64"]
    assert answer["outputs"][3]["data"] == [7, -8]


def test_an_answer_without_binary_outputs_is_plain_json_in_the_models_output_order():
    outputs = {"z": np.asarray([1], dtype=np.int8), "y": np.asarray([[1.0, 2.0]], dtype=np.float32)}
    asked = InferRequest(id=None, arrays={})
    response = infer_response(
        model_name="acme--m", model_version="1", request=asked, outputs=outputs, order=["y", "z"], parameters={}
    )
    assert not response.has_header("Inference-Header-Content-Length")
    assert response["Content-Type"] == "application/json"
    answer = json.loads(response.content)
    assert "id" not in answer
    assert answer["outputs"] == [
        {"name": "y", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]},
        {"name": "z", "datatype": "INT8", "shape": [1], "data": [1]},
    ]
