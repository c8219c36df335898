"""Inputs the model does not have, and inputs it needs but did not get, are named together with the model's
inputs."""

from __future__ import annotations

import numpy as np
import pytest

from apps.inference.runtime.validation import InputValidationError, validate_inputs

SIGNATURE = {
    "inputs": [
        {"name": "input_ids", "elem_type": "int64", "shape": ["batch", "sequence"]},
        {"name": "attention_mask", "elem_type": "int64", "shape": ["batch", "sequence"]},
    ],
    "outputs": [{"name": "last_hidden_state", "elem_type": "float32", "shape": ["batch", "sequence", 384]}],
}
TOKENS = np.array([[101, 7592, 102]])


def test_an_unknown_input_is_named_with_the_models_inputs():
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(SIGNATURE, {"input_ids": TOKENS, "attention_mask": TOKENS, "inputs_ids": TOKENS})
    assert caught.value.code == "unknown_input"
    assert caught.value.errors == {
        "inputs.inputs_ids": ["unknown input; the model's inputs are input_ids, attention_mask"]
    }


def test_a_missing_input_is_named_with_the_models_inputs():
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(SIGNATURE, {"input_ids": TOKENS})
    assert caught.value.code == "missing_input"
    assert caught.value.errors == {
        "inputs.attention_mask": ["required input is missing; the model's inputs are input_ids, attention_mask"]
    }


def test_unknown_and_missing_inputs_are_reported_together():
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(SIGNATURE, {"ids": TOKENS}, field="steps.0.inputs")
    assert set(caught.value.errors) == {
        "steps.0.inputs.ids",
        "steps.0.inputs.input_ids",
        "steps.0.inputs.attention_mask",
    }
    assert caught.value.codes["steps.0.inputs.ids"] == ["unknown_input"]
    assert "steps.0.inputs.input_ids: required input is missing" in str(caught.value)


def test_valid_inputs_come_back_in_the_models_order():
    result = validate_inputs(SIGNATURE, {"attention_mask": np.ones_like(TOKENS), "input_ids": TOKENS})
    assert list(result) == ["input_ids", "attention_mask"]


def test_a_non_tensor_input_cannot_be_fed():
    signature = {"inputs": [{"name": "features", "elem_type": "map(string,tensor(float32))", "shape": None}]}
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(signature, {"features": np.zeros(1)})
    assert caught.value.code == "unsupported_input"
    assert (
        "the model's input is a map(string,tensor(float32)), not a tensor" in caught.value.errors["inputs.features"][0]
    )


def test_an_element_type_numpy_cannot_hold_is_refused():
    signature = {"inputs": [{"name": "x", "elem_type": "bfloat16", "shape": [1]}]}
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(signature, {"x": np.zeros(1)})
    assert caught.value.errors["inputs.x"] == [
        "the model wants bfloat16, which NumPy cannot hold; this input cannot be fed"
    ]


def test_an_optional_tensor_input_is_fed_as_its_tensor():
    signature = {"inputs": [{"name": "x", "elem_type": "optional(tensor(float32))", "shape": None}]}
    assert validate_inputs(signature, {"x": np.array([1, 2])})["x"].dtype == np.float32
