"""``.npy`` tensors, inline (``{"npy": base64}``) or as bytes: decoded without ever unpickling."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from apps.inference.runtime.codecs import TensorCodecError, decode_inputs, decode_npy

LIMIT = 1 << 20
SPRUNG: list[str] = []


def spring() -> str:
    SPRUNG.append("unpickled")
    return "trap"


class Trap:
    """Unpickling this object calls ``spring``: a decoder that unpickles would leave a trace."""

    def __reduce__(self):
        return (spring, ())


def npy_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "original",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.arange(6, dtype=np.int64),
        np.array([0.5, -1.0], dtype=np.float16),
        np.array([[True, False]]),
        np.array(["héllo", "w"]),
    ],
    ids=["float32", "int64", "float16", "bool", "unicode"],
)
def test_inline_npy_decodes_to_the_saved_array(original):
    tensor = {"npy": base64.b64encode(npy_bytes(original)).decode()}
    array = decode_inputs({"x": tensor}, max_bytes=LIMIT)["x"]
    assert array.dtype == original.dtype
    np.testing.assert_array_equal(array, original)


def test_big_endian_and_fortran_ordered_npy_decode_to_native_c_order():
    original = np.arange(6, dtype=">i4").reshape(2, 3, order="F")
    array = decode_npy(npy_bytes(np.asfortranarray(original)), max_bytes=LIMIT, field="file")
    assert array.dtype == np.dtype("int32")
    assert array.flags.c_contiguous
    assert array.tolist() == original.tolist()


def test_an_object_npy_is_refused_without_unpickling_it():
    data = npy_bytes(np.array([Trap()], dtype=object), allow_pickle=True)
    with pytest.raises(TensorCodecError) as caught:
        decode_npy(data, max_bytes=LIMIT, field="inputs.x")
    assert caught.value.code == "pickle_refused"
    assert "would need unpickling; refused" in caught.value.errors["inputs.x"][0]
    assert SPRUNG == []


def test_an_inline_object_npy_names_the_input():
    tensor = {"npy": base64.b64encode(npy_bytes(np.array([Trap()], dtype=object), allow_pickle=True)).decode()}
    with pytest.raises(TensorCodecError) as caught:
        decode_inputs({"x": tensor}, max_bytes=LIMIT)
    assert "unpickling" in caught.value.errors["inputs.x"][0]
    assert SPRUNG == []


def test_a_record_dtype_is_refused():
    records = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")])
    with pytest.raises(TensorCodecError) as caught:
        decode_npy(npy_bytes(records), max_bytes=LIMIT, field="inputs.x")
    assert caught.value.code == "unsupported_dtype"
    assert "is not a tensor element type" in caught.value.errors["inputs.x"][0]


def test_bytes_that_are_not_npy_are_refused():
    with pytest.raises(TensorCodecError) as caught:
        decode_npy(b"PK\x03\x04 not an npy", max_bytes=LIMIT, field="inputs.x")
    assert caught.value.code == "undecodable"
    assert caught.value.errors["inputs.x"][0].startswith("not a .npy file")


def test_a_corrupt_header_is_refused():
    data = npy_bytes(np.zeros(3, np.float32)).replace(b"'descr'", b"'dexxx'")
    with pytest.raises(TensorCodecError) as caught:
        decode_npy(data, max_bytes=LIMIT, field="inputs.x")
    assert caught.value.errors["inputs.x"][0].startswith("not a valid .npy header")


def test_a_truncated_npy_is_refused_with_both_sizes():
    data = npy_bytes(np.zeros(4, np.float32))[:-4]
    with pytest.raises(TensorCodecError) as caught:
        decode_npy(data, max_bytes=LIMIT, field="inputs.x")
    assert caught.value.code == "shape_mismatch"
    assert caught.value.errors["inputs.x"][0].endswith("(16 bytes) but holds 12")


def test_inline_npy_that_is_not_base64_is_refused():
    with pytest.raises(TensorCodecError) as caught:
        decode_inputs({"x": {"npy": "%%%"}}, max_bytes=LIMIT)
    assert caught.value.errors["inputs.x"][0].startswith("not valid base64")
