"""JSON tensors: numbers, booleans, strings and nested lists decode to arrays, and malformed ones are refused
with the input's field and the position of the problem."""

from __future__ import annotations

import math

import numpy as np
import pytest

from apps.inference.runtime.codecs import TensorCodecError, decode_inputs

LIMIT = 1 << 20


def refusal(payload, *, max_bytes: int = LIMIT) -> TensorCodecError:
    with pytest.raises(TensorCodecError) as caught:
        decode_inputs(payload, max_bytes=max_bytes)
    return caught.value


def test_integer_lists_decode_to_int64_with_their_shape():
    arrays = decode_inputs({"x": [[1, 2, 3], [4, 5, 6]]}, max_bytes=LIMIT)
    assert arrays["x"].dtype == np.int64
    assert arrays["x"].shape == (2, 3)
    assert arrays["x"].tolist() == [[1, 2, 3], [4, 5, 6]]


def test_a_single_float_makes_the_whole_list_float64():
    arrays = decode_inputs({"x": [1, 2.5, 3]}, max_bytes=LIMIT)
    assert arrays["x"].dtype == np.float64
    assert arrays["x"].tolist() == [1.0, 2.5, 3.0]


def test_scalars_decode_to_rank_zero_arrays():
    arrays = decode_inputs({"n": 7, "f": 0.5, "b": True, "s": "hello"}, max_bytes=LIMIT)
    assert {name: array.shape for name, array in arrays.items()} == {"n": (), "f": (), "b": (), "s": ()}
    assert arrays["n"].dtype == np.int64
    assert arrays["f"].dtype == np.float64
    assert arrays["b"].dtype == np.bool_
    assert arrays["s"].item() == "hello"


def test_booleans_decode_to_bool():
    arrays = decode_inputs({"mask": [[True, False], [False, True]]}, max_bytes=LIMIT)
    assert arrays["mask"].dtype == np.bool_
    assert arrays["mask"].tolist() == [[True, False], [False, True]]


def test_strings_decode_to_an_object_array_of_str():
    arrays = decode_inputs({"text": [["héllo", "world"]]}, max_bytes=LIMIT)
    assert arrays["text"].dtype == object
    assert arrays["text"].shape == (1, 2)
    assert arrays["text"].tolist() == [["héllo", "world"]]


def test_non_finite_spellings_inside_numeric_lists_decode_to_nan_and_infinities():
    arrays = decode_inputs({"x": [[1.5, "NaN"], ["Infinity", "-Infinity"]]}, max_bytes=LIMIT)
    values = arrays["x"].ravel().tolist()
    assert arrays["x"].dtype == np.float64
    assert values[0] == 1.5
    assert math.isnan(values[1])
    assert values[2:] == [math.inf, -math.inf]


def test_an_empty_list_decodes_to_an_empty_array_of_its_shape():
    arrays = decode_inputs({"x": [[], []]}, max_bytes=LIMIT)
    assert arrays["x"].shape == (2, 0)
    assert arrays["x"].size == 0


def test_integers_beyond_int64_but_within_uint64_decode_to_uint64():
    arrays = decode_inputs({"x": [2**63, 1]}, max_bytes=LIMIT)
    assert arrays["x"].dtype == np.uint64
    assert arrays["x"].tolist() == [2**63, 1]


def test_integers_beyond_64_bits_are_refused():
    error = refusal({"x": [2**64, -1]})
    assert "do not fit in 64 bits" in error.errors["inputs.x"][0]


def test_a_payload_that_is_not_an_object_is_refused_under_inputs():
    error = refusal([[1, 2]])
    assert error.code == "invalid"
    assert error.errors == {"inputs": ["expected an object mapping input names to tensors, received a list"]}


def test_an_empty_payload_is_refused():
    assert refusal({}).errors == {"inputs": ["no inputs given"]}


def test_the_field_prefix_can_be_changed():
    with pytest.raises(TensorCodecError) as caught:
        decode_inputs({"x": [1, [2]]}, max_bytes=LIMIT, field="steps.0.inputs")
    assert list(caught.value.errors) == ["steps.0.inputs.x"]


def test_a_row_of_a_different_length_is_refused_with_its_position():
    error = refusal({"x": [[1, 2], [3, 4], [5]]})
    assert error.code == "ragged"
    assert error.errors == {"inputs.x": ["ragged nested lists: item [2] has 1 item, but item [0] has 2 items"]}


def test_a_number_where_a_list_is_expected_is_refused_with_its_position():
    error = refusal({"x": [[[1], [2]], [[3], 4]]})
    assert error.errors["inputs.x"] == ["ragged nested lists: item [1][1] is a number, but item [0][0] is a list of 1"]


def test_a_list_where_a_number_is_expected_is_refused_with_its_position():
    error = refusal({"x": [1, [2]]})
    assert error.errors["inputs.x"] == ["ragged nested lists: item [1] is a list, but item [0] is not"]


def test_null_inside_a_tensor_is_refused_with_its_position():
    error = refusal({"x": [[1.0, None]]})
    assert error.code == "invalid"
    assert error.errors["inputs.x"] == ["item [0][1] is null; tensors hold numbers, booleans or strings"]


def test_an_object_inside_a_list_is_refused():
    error = refusal({"x": [1, {"b64": ""}]})
    assert "item [1] is an object" in error.errors["inputs.x"][0]


@pytest.mark.parametrize(
    ("tensor", "position"),
    [([1, True], "[1]"), ([True, "NaN"], "[0]"), ([[1, 2], [True, False]], "[1][0]"), ([[0.5], [True]], "[1][0]")],
)
def test_booleans_mixed_with_numbers_are_refused(tensor, position):
    error = refusal({"x": tensor})
    assert error.errors["inputs.x"] == [f"item {position} is a boolean in a list of numbers or strings"]


def test_a_word_inside_a_numeric_list_is_refused_and_the_allowed_spellings_are_named():
    message = refusal({"x": [[1.0, 2.0], [3.0, "nan"]]}).errors["inputs.x"][0]
    assert message.startswith("item [1][1] is the string 'nan' in a list of numbers")
    assert '"NaN", "Infinity" and "-Infinity"' in message


def test_every_bad_input_is_reported_at_once():
    error = refusal({"a": [1, [2]], "b": [1, 2], "c": [None]})
    assert set(error.errors) == {"inputs.a", "inputs.c"}
    assert error.codes == {"inputs.a": ["ragged"], "inputs.c": ["invalid"]}
