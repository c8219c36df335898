"""``{"b64", "dtype", "shape"}`` tensors: the raw little-endian buffer decodes to its dtype and shape, and every
malformed object is refused naming the input and the reason."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from apps.inference.runtime.codecs import TensorCodecError, decode_inputs

LIMIT = 1 << 20


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def refusal(tensor) -> tuple[str, str]:
    with pytest.raises(TensorCodecError) as caught:
        decode_inputs({"x": tensor}, max_bytes=LIMIT)
    assert list(caught.value.errors) == ["inputs.x"]
    return caught.value.errors["inputs.x"][0], caught.value.code


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int64", "int32", "uint8", "bool"])
def test_a_raw_buffer_decodes_to_its_dtype_and_shape(dtype):
    original = (np.arange(12) % 2 == 0) if dtype == "bool" else np.arange(12).astype(dtype)
    original = original.reshape(3, 4)
    array = decode_inputs({"x": {"b64": b64(original), "dtype": dtype, "shape": [3, 4]}}, max_bytes=LIMIT)["x"]
    assert array.dtype == np.dtype(dtype)
    assert array.shape == (3, 4)
    np.testing.assert_array_equal(array, original)


def test_the_buffer_is_read_as_little_endian():
    big_endian = np.array([1.0, 2.0], dtype=">f4").tobytes()
    little_endian = np.array([1.0, 2.0], dtype="<f4").tobytes()
    tensor = {"b64": base64.b64encode(little_endian).decode(), "dtype": "float32", "shape": [2]}
    assert decode_inputs({"x": tensor}, max_bytes=LIMIT)["x"].tolist() == [1.0, 2.0]
    assert big_endian != little_endian


def test_the_decoded_array_is_writable():
    tensor = {"b64": b64(np.zeros(2, np.float32)), "dtype": "float32", "shape": [2]}
    array = decode_inputs({"x": tensor}, max_bytes=LIMIT)["x"]
    array[0] = 1.0
    assert array.flags.writeable


def test_bad_base64_is_refused_as_undecodable():
    message, code = refusal({"b64": "not*base64!", "dtype": "float32", "shape": [2]})
    assert code == "undecodable"
    assert message.startswith("not valid base64: ")


def test_unknown_keys_are_refused_and_the_allowed_ones_listed():
    message, code = refusal({"b64": b64(np.zeros(1, np.float32)), "dtype": "float32", "shape": [1], "order": "F"})
    assert code == "invalid"
    assert message == "unknown keys 'order' in a b64 tensor; allowed: b64, dtype, shape"


@pytest.mark.parametrize("missing", ["dtype", "shape"])
def test_dtype_and_shape_are_required(missing):
    tensor = {"b64": b64(np.zeros(1, np.float32)), "dtype": "float32", "shape": [1]}
    del tensor[missing]
    message, _ = refusal(tensor)
    assert message == f"a b64 tensor needs '{missing}'"


def test_an_unknown_dtype_is_refused_and_the_known_ones_listed():
    message, code = refusal({"b64": b64(np.zeros(1, np.float32)), "dtype": "float33", "shape": [1]})
    assert code == "unsupported_dtype"
    assert message.startswith("unknown dtype 'float33'; expected one of bool, int8")
    assert "float32" in message


def test_string_tensors_have_no_raw_buffer_form():
    message, _ = refusal({"b64": "", "dtype": "string", "shape": [0]})
    assert "send them as JSON lists of strings" in message


def test_a_shape_that_does_not_match_the_bytes_is_refused_with_both_sizes():
    message, code = refusal({"b64": b64(np.zeros(3, np.float32)), "dtype": "float32", "shape": [1, 4]})
    assert code == "shape_mismatch"
    assert message == "shape [1, 4] of float32 needs 16 bytes, the b64 data holds 12"


@pytest.mark.parametrize("shape", [[1, -4], "1x4", [1.0, 4], [True]])
def test_a_shape_that_is_not_a_list_of_natural_numbers_is_refused(shape):
    message, code = refusal({"b64": b64(np.zeros(4, np.float32)), "dtype": "float32", "shape": shape})
    assert code == "invalid"
    assert "shape" in message


def test_an_object_with_both_b64_and_npy_is_refused():
    message, _ = refusal({"b64": "", "npy": ""})
    assert message.startswith('expected a number, a nested list, {"b64", "dtype", "shape"} or {"npy"}')


def test_an_object_that_is_no_tensor_form_is_refused_with_its_keys():
    message, _ = refusal({"data": [1, 2]})
    assert message.endswith("received an object with keys 'data'")
