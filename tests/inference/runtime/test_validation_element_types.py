"""Element types: safe casts are made, casts that would change a value are refused with both types."""

from __future__ import annotations

import numpy as np
import pytest

from apps.inference.runtime.validation import InputValidationError, validate_inputs


def signature(elem_type: str, shape=None) -> dict:
    return {"inputs": [{"name": "x", "elem_type": elem_type, "shape": shape}], "outputs": []}


def cast(elem_type: str, values, **kwargs) -> np.ndarray:
    return validate_inputs(signature(elem_type), {"x": np.asarray(values)}, **kwargs)["x"]


def refusal(elem_type: str, values) -> tuple[str, str]:
    array = values if isinstance(values, np.ndarray) else np.asarray(values)
    with pytest.raises(InputValidationError) as caught:
        validate_inputs(signature(elem_type), {"x": array})
    assert list(caught.value.errors) == ["inputs.x"]
    return caught.value.errors["inputs.x"][0], caught.value.code


def test_json_integers_are_cast_to_a_float32_input():
    array = cast("float32", np.array([[1, 2]], dtype=np.int64))
    assert array.dtype == np.float32
    assert array.tolist() == [[1.0, 2.0]]


def test_json_floats_are_cast_to_a_float32_input():
    array = cast("float32", np.array([0.1, 2.5]))
    assert array.dtype == np.float32
    assert array[1] == np.float32(2.5)


def test_json_floats_are_cast_to_a_float16_input():
    assert cast("float16", [0.5, 100.0]).dtype == np.float16


def test_floats_beyond_float16_are_refused_with_its_range():
    message, code = refusal("float16", [1.0, 70000.0])
    assert code == "wrong_dtype"
    assert message == "expected float16, received float64 with values beyond the float16 range (±65504)"


def test_integers_beyond_float16_are_refused():
    message, _ = refusal("float16", np.array([70000], dtype=np.int64))
    assert message.startswith("expected float16, received int64 with values beyond the float16 range")


def test_non_integral_floats_are_refused_by_an_int_input():
    message, code = refusal("int64", [1.0, 2.5])
    assert code == "wrong_dtype"
    assert message == "expected int64, received float64 with non-integral values"


def test_integral_floats_are_cast_to_an_int_input():
    array = cast("int64", [1.0, -2.0])
    assert array.dtype == np.int64
    assert array.tolist() == [1, -2]


def test_nan_is_refused_by_an_int_input():
    message, _ = refusal("int32", [1.0, float("nan")])
    assert message == "expected int32, received float64 with NaN or infinite values"


def test_integers_outside_a_narrow_int_type_are_refused_with_its_range():
    message, _ = refusal("uint8", np.array([0, 256], dtype=np.int64))
    assert message == "expected uint8, received int64 with values outside the uint8 range [0, 255]"


def test_negative_integers_are_refused_by_an_unsigned_input():
    message, _ = refusal("uint32", np.array([-1], dtype=np.int64))
    assert message.startswith("expected uint32, received int64 with values outside the uint32 range [0, ")


def test_floats_outside_int64_are_refused():
    message, _ = refusal("int64", [2.0**63])
    assert message.startswith("expected int64, received float64 with values outside the int64 range")


def test_int64_values_within_int32_are_cast_to_an_int32_input():
    array = cast("int32", np.array([[5, -7]], dtype=np.int64))
    assert array.dtype == np.int32
    assert array.tolist() == [[5, -7]]


def test_booleans_are_fed_to_a_bool_input():
    assert cast("bool", [True, False]).tolist() == [True, False]


def test_zeros_and_ones_are_cast_to_a_bool_input():
    array = cast("bool", np.array([1, 0, 1]))
    assert array.dtype == np.bool_
    assert array.tolist() == [True, False, True]


def test_other_integers_are_refused_by_a_bool_input():
    message, _ = refusal("bool", np.array([0, 2]))
    assert message == "expected bool, received int64 with values other than 0 and 1"


def test_floats_are_refused_by_a_bool_input():
    message, _ = refusal("bool", [0.0, 1.0])
    assert message == "expected bool, received float64"


def test_booleans_are_cast_to_an_int_mask():
    array = cast("int64", [[True, False]])
    assert array.dtype == np.int64
    assert array.tolist() == [[1, 0]]


def test_strings_are_refused_by_a_numeric_input():
    message, code = refusal("float32", np.array(["1.5"], dtype=object))
    assert code == "wrong_dtype"
    assert message == "expected float32, received string"


def test_numbers_are_refused_by_a_string_input():
    message, _ = refusal("string", [1.5])
    assert message == "expected string, received float64"


def test_strings_are_fed_to_a_string_input_as_an_object_array():
    array = cast("string", np.array(["héllo", "wörld"]))
    assert array.dtype == object
    assert array.tolist() == ["héllo", "wörld"]


def test_a_list_made_only_of_nan_spellings_is_cast_to_a_float_input_when_nan_is_allowed():
    array = cast("float32", np.array(["NaN", "Infinity"], dtype=object), allow_nan=True)
    assert array.dtype == np.float32
    assert np.isnan(array[0])
    assert array[1] == np.inf


def test_an_empty_array_takes_the_declared_type():
    array = validate_inputs(signature("string", [0]), {"x": np.zeros((0,))})["x"]
    assert array.dtype == object
    assert array.shape == (0,)


def test_results_are_contiguous_in_the_declared_dtype():
    transposed = np.arange(6, dtype=np.float64).reshape(2, 3).T
    array = cast("float32", transposed)
    assert array.flags.c_contiguous
    assert array.tolist() == transposed.tolist()
