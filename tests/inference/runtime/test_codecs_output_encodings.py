"""Outputs encode to JSON-ready values in each encoding, and decode back (through validation, which casts JSON
numbers to the declared type) to the very same arrays."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from apps.inference.runtime.codecs import ENCODINGS, TensorCodecError, decode_inputs, encode_outputs
from apps.inference.runtime.validation import validate_inputs

LIMIT = 1 << 20


def strings(*values: str) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


ORIGINALS = {
    "float32": np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4) / 3,
    "int64": np.array([[9_007_199_254_740_993, -5]], dtype=np.int64),  # beyond a double's exact integers
    "float16": np.array([0.1, -65504.0, 6e-8], dtype=np.float16),
    "bool": np.array([[True, False], [False, True]]),
    "string": strings("héllo", "wörld", ""),
}


def over_the_wire(encoded: dict) -> dict:
    """What a client receives and sends back: strict JSON (no bare NaN)."""
    return json.loads(json.dumps(encoded, allow_nan=False))


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("elem_type", list(ORIGINALS))
def test_each_encoding_round_trips_each_element_type(encoding, elem_type):
    original = ORIGINALS[elem_type]
    encoded = over_the_wire(encode_outputs({"y": original}, encoding=encoding))
    decoded = decode_inputs(encoded, max_bytes=LIMIT)
    signature = {"inputs": [{"name": "y", "elem_type": elem_type, "shape": list(original.shape)}]}
    restored = validate_inputs(signature, decoded)["y"]
    assert restored.dtype == original.dtype
    assert restored.shape == original.shape
    assert restored.tolist() == original.tolist()


def test_json_encoding_gives_nested_lists_and_float16_as_plain_floats():
    encoded = encode_outputs({"y": np.array([[0.5, 1.0]], dtype=np.float16)})
    assert encoded == {"y": [[0.5, 1.0]]}
    assert type(encoded["y"][0][0]) is float


def test_json_encoding_spells_nan_and_infinities_as_strings():
    encoded = encode_outputs({"y": np.array([1.0, np.nan, np.inf, -np.inf], dtype=np.float32)})
    assert encoded == {"y": [1.0, "NaN", "Infinity", "-Infinity"]}


def test_nan_survives_a_round_trip_when_the_model_allows_it():
    encoded = over_the_wire(encode_outputs({"y": np.array([np.nan, -np.inf], dtype=np.float32)}))
    decoded = decode_inputs(encoded, max_bytes=LIMIT)
    signature = {"inputs": [{"name": "y", "elem_type": "float32", "shape": [2]}]}
    restored = validate_inputs(signature, decoded, allow_nan=True)["y"]
    assert math.isnan(restored[0])
    assert restored[1] == -np.inf


def test_b64_encoding_gives_the_little_endian_buffer_its_dtype_and_shape():
    encoded = encode_outputs({"y": np.array([[1.0, 2.0]], dtype=">f4")}, encoding="b64")
    assert encoded["y"]["dtype"] == "float32"
    assert encoded["y"]["shape"] == [1, 2]
    assert encoded["y"]["b64"] == "AACAPwAAAEA="


def test_npy_encoding_gives_a_base64_npy_file():
    encoded = encode_outputs({"y": np.arange(3, dtype=np.int32)}, encoding="npy")
    assert set(encoded["y"]) == {"npy"}
    assert decode_inputs(encoded, max_bytes=LIMIT)["y"].tolist() == [0, 1, 2]


def test_a_rank_zero_output_encodes_to_a_scalar():
    assert encode_outputs({"score": np.float32(0.5), "n": np.array(3)}) == {"score": 0.5, "n": 3}


def test_string_tensors_are_sent_as_json_lists_under_b64():
    assert encode_outputs({"text": strings("a", "b")}, encoding="b64") == {"text": ["a", "b"]}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_sequence_of_maps_is_json_with_string_keys_in_every_encoding(encoding):
    probabilities = [{0: np.float32(0.75), 1: 0.25}, {0: 0.5, 1: float("nan")}]
    encoded = encode_outputs({"label": np.array([0, 1]), "probabilities": probabilities}, encoding=encoding)
    assert encoded["probabilities"] == [{"0": 0.75, "1": 0.25}, {"0": 0.5, "1": "NaN"}]
    json.dumps(encoded, allow_nan=False)


def test_a_sequence_of_tensors_is_json():
    encoded = encode_outputs({"pieces": [np.array([1.5, np.inf]), np.array([[2]])]}, encoding="npy")
    assert encoded == {"pieces": [[1.5, "Infinity"], [[2]]]}


def test_an_unknown_encoding_is_refused_under_encoding():
    with pytest.raises(TensorCodecError) as caught:
        encode_outputs({"y": np.zeros(1)}, encoding="msgpack")
    assert caught.value.code == "invalid"
    assert caught.value.errors == {"encoding": ["unknown encoding 'msgpack'; choose one of json, b64, npy"]}
