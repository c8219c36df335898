"""Real models: JSON requests go through decode, validation and a CPU ``InferenceSession.run``, and the
outputs encode to JSON; a request that does not fit the signature is refused before ONNX Runtime sees it."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper

from apps.inference.runtime.codecs import decode_inputs, encode_outputs
from apps.inference.runtime.validation import InputValidationError, validate_inputs
from apps.marketplace.onnx.signature import extract_signature
from tests.inference.runtime import iris_path, minilm_path, minilm_request, session_for, signature_of

LIMIT = 1 << 20


def run(path, arrays: dict) -> dict:
    session = session_for(path)
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, arrays), strict=True))


def test_the_iris_classifier_runs_on_json_floats_cast_to_float32():
    request = {"float_input": [[5.1, 3.5], [6.2, 2.9], [7.7, 3.0]]}
    inputs = validate_inputs(signature_of(iris_path()), decode_inputs(request, max_bytes=LIMIT))
    assert inputs["float_input"].dtype == np.float32
    outputs = run(iris_path(), inputs)
    encoded = json.loads(json.dumps(encode_outputs(outputs), allow_nan=False))
    assert len(encoded["label"]) == 3
    assert all(isinstance(label, int) for label in encoded["label"])
    assert len(encoded["probabilities"]) == 3
    for row, label in zip(encoded["probabilities"], encoded["label"], strict=True):
        assert set(row) == {"0", "1", "2"}
        assert abs(sum(row.values()) - 1.0) < 1e-5
        assert max(row, key=row.get) == str(label)


def test_the_iris_classifier_refuses_a_batch_of_the_wrong_size_before_running():
    arrays = decode_inputs({"float_input": [[5.1, 3.5]]}, max_bytes=LIMIT)
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(signature_of(iris_path()), arrays)
    assert caught.value.errors == {
        "inputs.float_input": ["dimension 0 is 1, the model wants 3 (expected shape [3, 2], received [1, 2])"]
    }


def test_minilm_runs_on_a_tokenized_json_request():
    arrays = decode_inputs(minilm_request("I play the guitar."), max_bytes=LIMIT)
    inputs = validate_inputs(signature_of(minilm_path()), arrays)
    assert {array.dtype for array in inputs.values()} == {np.dtype(np.int64)}
    hidden = run(minilm_path(), inputs)["last_hidden_state"]
    tokens = inputs["input_ids"].shape[1]
    assert hidden.shape == (1, tokens, 384)
    assert np.isfinite(hidden).all()


def test_minilm_runs_on_b64_and_npy_inputs_with_the_same_result_as_json():
    request = minilm_request("The electric guitar has six strings.")
    by_json = validate_inputs(signature_of(minilm_path()), decode_inputs(request, max_bytes=LIMIT))
    for encoding in ("b64", "npy"):
        wire = json.loads(json.dumps(encode_outputs(by_json, encoding=encoding)))
        again = validate_inputs(signature_of(minilm_path()), decode_inputs(wire, max_bytes=LIMIT))
        np.testing.assert_array_equal(
            run(minilm_path(), again)["last_hidden_state"], run(minilm_path(), by_json)["last_hidden_state"]
        )


def test_minilm_refuses_a_mask_shorter_than_the_tokens_before_running():
    request = minilm_request("I play the guitar.")
    request["attention_mask"] = [request["attention_mask"][0][:-1]]
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(signature_of(minilm_path()), decode_inputs(request, max_bytes=LIMIT))
    tokens = len(request["input_ids"][0])
    assert caught.value.errors == {
        "inputs.attention_mask": [f'dimension 1 ("sequence") is {tokens - 1}, but inputs.input_ids has {tokens}']
    }


def test_a_string_model_built_with_onnx_helper_runs_on_validated_json_strings():
    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["echo"])],
        "echo",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("echo", TensorProto.STRING, ["N"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = validate_inputs(extract_signature(model), decode_inputs({"text": ["héllo", "wörld"]}, max_bytes=LIMIT))
    (echo,) = session.run(None, inputs)
    assert encode_outputs({"echo": echo}) == {"echo": ["héllo", "wörld"]}
