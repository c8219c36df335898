"""Requests a client library would never build, sent raw to ``POST /v2/models/{name}/infer``: each answers 400
with the protocol's ``{"error": ...}`` naming the field (the body, the binary header, the input) and the reason,
and writes no prediction."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from apps.inference.models import InferenceJob
from tests.conftest import api_client_for

URL = "/v2/models/acme--iris/infer"
SHARED = {"shared_memory_region": "region-0"}
FOUR = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture
def iris(runnable, tmp_path):
    return runnable.iris(tmp_path)


def send(world, body: bytes, *, header_length: int | str | None = None, **headers):
    client = api_client_for(world.user("member"))
    if header_length is not None:
        headers["HTTP_INFERENCE_HEADER_CONTENT_LENGTH"] = str(header_length)
    return client.generic("POST", URL, data=body, content_type="application/octet-stream", **headers)


def refused(response, key: str) -> str:
    """The error message of a 400 that names ``key``; nothing was written."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert key in body["errors"], body
    assert body["code"] == "validation_error"
    assert not InferenceJob.objects.exists()
    return body["error"]


def json_input(data, shape=(1, 4), datatype="FP32", name="float_input") -> bytes:
    return json.dumps({"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}]}).encode()


def binary_request(raw: bytes, *, size: int | None = None, shape=(1, 4), datatype="FP32") -> tuple[bytes, int]:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "float_input",
                    "shape": list(shape),
                    "datatype": datatype,
                    "parameters": {"binary_data_size": len(raw) if size is None else size},
                }
            ]
        }
    ).encode()
    return header + raw, len(header)


def test_malformed_json_names_the_body_and_the_parser_error(iris, world):
    message = refused(send(world, b'{"inputs": [}'), "body")
    assert message.startswith("body: not valid JSON (Expecting value: line 1 column 13")
    assert "Inference-Header-Content-Length" in message


def test_a_json_array_instead_of_an_object_names_the_body(iris, world):
    assert "expected a JSON object" in refused(send(world, b"[1, 2]"), "body")


def test_a_binary_header_length_past_the_body_names_the_header_and_both_sizes(iris, world):
    body, _ = binary_request(np.asarray([FOUR], dtype=np.float32).tobytes())
    message = refused(send(world, body, header_length=len(body) + 10), "Inference-Header-Content-Length")
    assert f"says the JSON is {len(body) + 10} bytes, but the whole body is {len(body)} bytes" in message
    assert "number of bytes" in refused(send(world, body, header_length="many"), "Inference-Header-Content-Length")


def test_a_binary_data_size_past_the_body_names_the_input(iris, world):
    body, length = binary_request(np.asarray([FOUR], dtype=np.float32).tobytes(), size=64)
    message = refused(send(world, body, header_length=length), "inputs.float_input")
    assert "binary_data_size is 64 bytes, but only 16 bytes of binary data are left in the body" in message


def test_binary_data_of_the_wrong_length_for_the_shape_names_the_input_and_the_bytes(iris, world):
    body, length = binary_request(np.asarray([FOUR[:3]], dtype=np.float32).tobytes())
    message = refused(send(world, body, header_length=length), "inputs.float_input")
    assert "shape [1, 4] of FP32 needs 16 bytes (4 × 4), but binary_data_size is 12" in message


def test_bytes_past_what_the_inputs_claim_are_refused(iris, world):
    body, length = binary_request(np.asarray([FOUR], dtype=np.float32).tobytes())
    assert "4 bytes of binary data are past" in refused(send(world, body + b"\0" * 4, header_length=length), "body")


def test_json_data_of_the_wrong_length_for_the_shape_names_the_input_and_both_counts(iris, world):
    message = refused(send(world, json_input(FOUR[:3])), "inputs.float_input")
    assert "inputs.float_input: shape [1, 4] holds 4 elements, but data has 3" in message


def test_a_ragged_nested_list_or_text_in_number_data_is_refused(iris, world):
    assert "not a regular list of numbers" in refused(send(world, json_input([[1, 2], [3]])), "inputs.float_input")
    assert "data holds text; FP32 wants numbers" in refused(
        send(world, json_input(["a", "b", "c", "d"])), "inputs.float_input"
    )


def test_a_negative_or_non_integer_shape_is_refused(iris, world):
    assert "negative dimension" in refused(send(world, json_input(FOUR, shape=(-1, 4))), "inputs.float_input")
    assert "list of integers" in refused(send(world, json_input(FOUR, shape=(1.5, 4))), "inputs.float_input")


def test_an_unknown_datatype_lists_the_protocols_datatypes_and_bf16_is_refused_with_the_reason(iris, world):
    message = refused(send(world, json_input(FOUR, datatype="FLOAT")), "inputs.float_input")
    assert 'unknown datatype "FLOAT"; the protocol\'s datatypes are BOOL, UINT8' in message
    assert "NumPy has no bfloat16" in refused(send(world, json_input(FOUR, datatype="BF16")), "inputs.float_input")


def test_nan_is_refused_with_where_it_is(iris, world):
    body = b'{"inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": [1, NaN, 3, 4]}]}'
    assert "a NaN or infinite value at [0, 1]" in refused(send(world, body), "inputs.float_input")


def test_an_input_without_data_or_given_twice_is_refused(iris, world):
    body = json.dumps({"inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32"}]}).encode()
    assert "no data" in refused(send(world, body), "inputs.float_input")
    entry = {"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": FOUR}
    twice = json.dumps({"inputs": [entry, entry]}).encode()
    assert "given twice" in refused(send(world, twice), "inputs.float_input")


def test_an_unknown_output_lists_the_models_outputs(iris, world):
    body = json.loads(json_input(FOUR))
    body["outputs"] = [{"name": "species"}]
    message = refused(send(world, json.dumps(body).encode()), "outputs.species")
    assert "unknown output; the model's tensor outputs are label, probabilities" in message


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"parameters": {"sequence_id": 7}}, "parameters.sequence_id", "sequences (stateful models) are not supported"),
        ({"outputs": [{"name": "label", "parameters": {"classification": 2}}]}, "outputs.label", "classification"),
        (
            {
                "inputs": [
                    {
                        "name": "float_input",
                        "shape": [1, 4],
                        "datatype": "FP32",
                        "parameters": {"shared_memory_region": "r"},
                    }
                ]
            },
            "inputs.float_input",
            "shared memory is not supported",
        ),
        ({"parameters": {"timeout": 10**12}}, "parameters.timeout", "past this server's limit"),
        ({"id": 42}, "id", "expected a string"),
    ],
    ids=["sequence", "classification", "shared-memory", "timeout", "id"],
)
def test_features_this_server_lacks_are_refused_by_name(iris, world, change, key, words):
    body = {**json.loads(json_input(FOUR)), **change}
    assert words in refused(send(world, json.dumps(body).encode()), key)


def test_a_gzip_body_is_read_and_a_broken_one_names_the_encoding(iris, world):
    message = refused(
        send(world, gzip.compress(json_input(FOUR[:3])), HTTP_CONTENT_ENCODING="gzip"), "inputs.float_input"
    )
    assert "holds 4 elements, but data has 3" in message
    assert "not valid gzip data" in refused(send(world, b"not gzip", HTTP_CONTENT_ENCODING="gzip"), "Content-Encoding")
    assert "“br” is not supported" in refused(send(world, b"{}", HTTP_CONTENT_ENCODING="br"), "Content-Encoding")


def test_a_body_past_the_request_limit_is_refused(iris, world, settings):
    settings.INFERENCE_MAX_REQUEST_BYTES = 64
    assert "larger than this server takes (64 bytes)" in refused(
        send(world, json_input(FOUR * 10, shape=(10, 4))), "body"
    )


def test_binary_bytes_that_are_not_length_prefixed_names_the_input(runnable, world):
    # the element framing is checked before anything runs: a BYTES element whose length runs past its data
    runnable.version("words", {"model.onnx": string_identity_model()}, None)
    raw = struct.pack("<I", 10) + b"abc"
    header = json.dumps(
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}]}
    ).encode()
    client = api_client_for(world.user("member"))
    response = client.generic(
        "POST",
        "/v2/models/acme--words/infer",
        data=header + raw,
        content_type="application/octet-stream",
        HTTP_INFERENCE_HEADER_CONTENT_LENGTH=str(len(header)),
    )
    assert "binary BYTES element 0 says 10 bytes, past the end of its data" in refused(response, "inputs.text")


def string_identity_model() -> bytes:
    """text string [N] -> Identity -> same string [N]: a model with a BYTES input."""
    from onnx import TensorProto, helper

    from tests.marketplace.onnx_fixtures import make_model

    node = helper.make_node("Identity", ["text"], ["same"])
    return make_model(
        [node],
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["n"])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, ["n"])],
    ).SerializeToString()
