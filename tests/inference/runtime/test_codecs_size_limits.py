"""``max_bytes`` caps what a request's inputs decode to, in every form, counted together and checked before the
bytes are produced."""

from __future__ import annotations

import base64
import io
import tracemalloc

import numpy as np
import pytest

from apps.inference.runtime.codecs import TensorCodecError, decode_inputs


def refusal(payload, max_bytes: int) -> TensorCodecError:
    with pytest.raises(TensorCodecError) as caught:
        decode_inputs(payload, max_bytes=max_bytes)
    assert caught.value.code == "too_large"
    return caught.value


def test_a_json_list_over_the_limit_is_refused_with_its_size():
    error = refusal({"x": list(range(200))}, max_bytes=1000)
    assert error.errors == {"inputs.x": ["the integers would decode to 1600 bytes, over the limit of 1000 bytes"]}


def test_a_json_list_at_the_limit_is_accepted():
    assert decode_inputs({"x": [0.5] * 125}, max_bytes=1000)["x"].nbytes == 1000


def test_inputs_are_counted_together_and_decoding_stops_at_the_first_over():
    error = refusal({"a": [1.0] * 100, "b": [1.0] * 100, "c": [None]}, max_bytes=1000)
    assert list(error.errors) == ["inputs.b"]
    assert "(800 already used)" in error.errors["inputs.b"][0]


def test_a_b64_shape_over_the_limit_is_refused_before_decoding_the_base64():
    text = "A" * (8 << 20)  # 6 MiB once decoded
    tracemalloc.start()
    try:
        error = refusal({"x": {"b64": text, "dtype": "float32", "shape": [1 << 30]}}, max_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.errors["inputs.x"] == [
        f"shape [{1 << 30}] of float32 would decode to {4 << 30} bytes, over the limit of {1 << 20} bytes"
    ]
    assert peak < 1 << 20


def test_npy_base64_over_the_limit_is_refused_before_decoding():
    error = refusal({"x": {"npy": "A" * 4000}}, max_bytes=1000)
    assert error.errors["inputs.x"][0].startswith("the npy data would decode to 3000 bytes")


def test_an_npy_header_declaring_more_than_the_limit_is_refused_before_reading_the_data():
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (1 << 40,)})
    tensor = {"npy": base64.b64encode(buffer.getvalue()).decode()}
    error = refusal({"x": tensor}, max_bytes=1 << 20)
    assert error.errors["inputs.x"][0].startswith(f"the .npy's shape [{1 << 40}] of float64 would decode to")


def test_strings_count_their_length():
    error = refusal({"text": ["x" * 2000]}, max_bytes=1000)
    assert error.errors["inputs.text"][0].startswith("the strings would decode to 2008 bytes")


def test_an_inline_npy_is_counted_once_by_the_array_it_holds():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(1000, np.float32))
    tensor = {"npy": base64.b64encode(buffer.getvalue()).decode()}
    assert decode_inputs({"x": tensor, "y": [0.0] * 10}, max_bytes=len(buffer.getvalue()) + 80)["x"].size == 1000


def test_a_b64_string_far_longer_than_its_shape_is_refused_without_decoding_it():
    text = "AAAA" * (1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(TensorCodecError) as caught:
            decode_inputs({"x": {"b64": text, "dtype": "float32", "shape": [1]}}, max_bytes=1 << 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.errors["inputs.x"] == [f"shape [1] of float32 needs 4 bytes, the b64 data holds {3 << 20}"]
    assert peak < 1 << 20
