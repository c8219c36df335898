"""Shapes: rank, fixed dimensions, symbolic dimensions that must agree across inputs, and empty dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from apps.inference.runtime.validation import InputValidationError, validate_inputs

TOKENS = {
    "inputs": [
        {"name": "input_ids", "elem_type": "int64", "shape": ["batch", "sequence"]},
        {"name": "attention_mask", "elem_type": "int64", "shape": ["batch", "sequence"]},
    ],
    "outputs": [],
}
FIXED = {"inputs": [{"name": "x", "elem_type": "float32", "shape": [None, 4]}], "outputs": []}


def errors_of(signature: dict, arrays: dict, **kwargs) -> InputValidationError:
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(signature, arrays, **kwargs)
    return caught.value


def test_a_rank_mismatch_names_the_expected_shape_and_rank():
    error = errors_of(TOKENS, {"input_ids": np.array([1, 2, 3]), "attention_mask": np.ones((1, 3), np.int64)})
    assert error.code == "wrong_shape"
    assert error.errors == {"inputs.input_ids": ["expected shape [batch, sequence] (rank 2), received [3]"]}


def test_a_fixed_dimension_mismatch_names_the_axis_and_both_sizes():
    error = errors_of(FIXED, {"x": np.zeros((2, 5))})
    assert error.errors == {
        "inputs.x": ["dimension 1 is 5, the model wants 4 (expected shape [?, 4], received [2, 5])"]
    }


def test_unknown_dimensions_take_any_size():
    assert validate_inputs(FIXED, {"x": np.zeros((7, 4))})["x"].shape == (7, 4)


def test_an_unknown_rank_takes_any_shape():
    signature = {"inputs": [{"name": "x", "elem_type": "float32", "shape": None}]}
    assert validate_inputs(signature, {"x": np.zeros((2, 3, 4))})["x"].shape == (2, 3, 4)


def test_a_symbolic_dimension_must_agree_across_inputs():
    error = errors_of(TOKENS, {"input_ids": np.ones((3, 5), np.int64), "attention_mask": np.ones((2, 5), np.int64)})
    assert error.code == "dimension_mismatch"
    assert error.errors == {"inputs.attention_mask": ['dimension 0 ("batch") is 2, but inputs.input_ids has 3']}


def test_every_symbolic_disagreement_is_reported():
    error = errors_of(TOKENS, {"input_ids": np.ones((3, 5), np.int64), "attention_mask": np.ones((2, 4), np.int64)})
    assert error.errors["inputs.attention_mask"] == [
        'dimension 0 ("batch") is 2, but inputs.input_ids has 3',
        'dimension 1 ("sequence") is 4, but inputs.input_ids has 5',
    ]


def test_type_and_shape_problems_of_one_input_are_reported_together():
    error = errors_of(FIXED, {"x": np.array([["a", "b", "c"]], dtype=object)})
    assert error.errors["inputs.x"] == [
        "dimension 1 is 3, the model wants 4 (expected shape [?, 4], received [1, 3])",
        "expected float32, received string",
    ]
    assert error.codes["inputs.x"] == ["wrong_shape", "wrong_dtype"]


def test_an_empty_symbolic_dimension_is_refused():
    error = errors_of(TOKENS, {"input_ids": np.ones((0, 5), np.int64), "attention_mask": np.ones((1, 5), np.int64)})
    assert error.code == "empty"
    assert error.errors["inputs.input_ids"] == [
        'dimension 0 ("batch") is empty (0); empty tensors are refused for this model'
    ]


def test_an_empty_dimension_is_accepted_where_allowed():
    past = {"inputs": [{"name": "past", "elem_type": "float32", "shape": ["batch", 2, "past_sequence", 8]}]}
    array = validate_inputs(past, {"past": np.zeros((1, 2, 0, 8))}, allow_empty=True)["past"]
    assert array.shape == (1, 2, 0, 8)
    assert array.dtype == np.float32


def test_an_empty_dimension_is_accepted_where_the_model_declares_zero():
    signature = {"inputs": [{"name": "x", "elem_type": "float32", "shape": [0, 3]}]}
    assert validate_inputs(signature, {"x": np.zeros((0, 3))})["x"].shape == (0, 3)


def test_an_empty_tensor_is_refused_for_an_unknown_rank():
    signature = {"inputs": [{"name": "x", "elem_type": "float32", "shape": None}]}
    error = errors_of(signature, {"x": np.zeros((2, 0))})
    assert error.errors["inputs.x"] == ["dimension 1 is empty (0); empty tensors are refused for this model"]
