"""NaN and infinities are refused unless the caller allows them, with the count and the first position."""

from __future__ import annotations

import numpy as np
import pytest

from apps.inference.runtime.codecs import decode_inputs
from apps.inference.runtime.validation import InputValidationError, validate_inputs

SIGNATURE = {"inputs": [{"name": "x", "elem_type": "float32", "shape": [None, 3]}], "outputs": []}


def test_nan_is_refused_with_its_position():
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(SIGNATURE, {"x": np.array([[0.0, 1.0, 2.0], [3.0, np.nan, 5.0]])})
    assert caught.value.code == "non_finite"
    assert caught.value.errors == {
        "inputs.x": ["a NaN or infinite value at [1, 1]; they are refused unless allow_nan is set"]
    }


def test_spelled_infinities_from_json_are_refused_with_their_count():
    arrays = decode_inputs({"x": [["Infinity", 1.0, "-Infinity"]]}, max_bytes=1 << 20)
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(SIGNATURE, arrays)
    assert caught.value.errors["inputs.x"] == [
        "2 NaN or infinite values, the first at [0, 0]; they are refused unless allow_nan is set"
    ]


def test_nan_passes_when_allowed():
    array = validate_inputs(SIGNATURE, {"x": np.array([[np.nan, np.inf, 1.0]])}, allow_nan=True)["x"]
    assert array.dtype == np.float32
    assert np.isnan(array[0, 0])
    assert np.isinf(array[0, 1])


def test_a_float64_value_that_overflows_float32_is_not_mistaken_for_an_allowed_infinity():
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(SIGNATURE, {"x": np.array([[1e39, 0.0, 0.0]])}, allow_nan=True)
    assert caught.value.errors["inputs.x"][0].startswith("expected float32, received float64 with values beyond")
