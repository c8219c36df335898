"""``.npz`` archives: decoded member by member, with zip bombs refused from their declared sizes before any
member is inflated, and pickles never loaded."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from apps.inference.runtime.codecs import TensorCodecError, decode_npz, encode_npz

LIMIT = 1 << 20


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def streamed_zero_bomb(uncompressed: int) -> bytes:
    """An .npz whose one member inflates to ``uncompressed`` bytes of zeros, written without holding them."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": ((uncompressed - 128) // 4,)}
    )
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("x.npy", "w", force_zip64=True) as member,
    ):
        member.write(header.getvalue())
        chunk = bytes(1 << 20)
        written = len(header.getvalue())
        while written < uncompressed:
            piece = chunk[: uncompressed - written]
            member.write(piece)
            written += len(piece)
    return buffer.getvalue()


def with_declared_size(data: bytes, size: int) -> bytes:
    """The archive with its one member's uncompressed size rewritten to ``size`` in both headers."""
    patched = bytearray(data)
    local = patched.index(b"PK\x03\x04")
    struct.pack_into("<I", patched, local + 22, size)
    central = patched.index(b"PK\x01\x02")
    struct.pack_into("<I", patched, central + 24, size)
    return bytes(patched)


def test_an_npz_decodes_to_its_members_by_name():
    data = npz_bytes(input_ids=np.array([[101, 7592, 102]]), pixel=np.ones((1, 3), np.float32))
    arrays = decode_npz(data, max_bytes=LIMIT)
    assert sorted(arrays) == ["input_ids", "pixel"]
    assert arrays["input_ids"].tolist() == [[101, 7592, 102]]
    assert arrays["pixel"].dtype == np.float32


@pytest.mark.parametrize(
    "original",
    [
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        np.array([[1, -2, 3]], dtype=np.int64),
        np.array([0.25, np.nan, np.inf], dtype=np.float16),
        np.array([True, False, True]),
    ],
    ids=["float32", "int64", "float16", "bool"],
)
def test_encode_npz_round_trips_through_decode_npz(original):
    decoded = decode_npz(encode_npz({"y": original}), max_bytes=LIMIT)["y"]
    assert decoded.dtype == original.dtype
    np.testing.assert_array_equal(decoded, original)


def test_encode_npz_stores_string_tensors_as_unicode_and_skips_non_tensor_outputs():
    strings = np.empty(2, dtype=object)
    strings[:] = ["héllo", "world"]
    outputs = {"label": np.array([0, 2]), "text": strings, "probabilities": [{0: 0.9, 1: 0.1}, {0: 0.2, 1: 0.8}]}
    decoded = decode_npz(encode_npz(outputs), max_bytes=LIMIT)
    assert sorted(decoded) == ["label", "text"]
    assert decoded["text"].tolist() == ["héllo", "world"]


def test_a_member_inflating_past_the_limit_is_refused_without_inflating_it():
    bomb = streamed_zero_bomb(256 << 20)  # 256 MiB of zeros, a few hundred KiB compressed
    assert len(bomb) < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(TensorCodecError) as caught:
            decode_npz(bomb, max_bytes=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == "too_large"
    assert caught.value.errors["file.x"] == [
        f"member 'x.npy' declares {256 << 20} bytes uncompressed, over the limit of {LIMIT} bytes"
    ]
    assert peak < 4 << 20


def test_a_member_whose_header_declares_a_huge_size_is_refused_before_reading():
    data = with_declared_size(npz_bytes(x=np.zeros(4, np.float32)), 0xFFFFFFF0)
    tracemalloc.start()
    try:
        with pytest.raises(TensorCodecError) as caught:
            decode_npz(data, max_bytes=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "declares 4294967280 bytes uncompressed" in caught.value.errors["file.x"][0]
    assert peak < 1 << 20


def test_members_are_counted_together_against_the_limit():
    data = npz_bytes(a=np.zeros(100_000, np.float32), b=np.zeros(100_000, np.float32))
    with pytest.raises(TensorCodecError) as caught:
        decode_npz(data, max_bytes=500_000)
    assert list(caught.value.errors) == ["file.b"]
    assert "already used" in caught.value.errors["file.b"][0]


def test_a_member_that_lies_about_its_size_is_refused():
    data = with_declared_size(npz_bytes(x=np.zeros(4, np.float32)), 64)
    with pytest.raises(TensorCodecError) as caught:
        decode_npz(data, max_bytes=LIMIT)
    assert caught.value.code == "undecodable"
    assert caught.value.errors["file.x"][0].startswith("member 'x.npy' ")


def test_a_pickled_member_is_refused():
    buffer = io.BytesIO()
    np.savez(buffer, x=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(TensorCodecError) as caught:
        decode_npz(buffer.getvalue(), max_bytes=LIMIT)
    assert caught.value.code == "pickle_refused"
    assert "unpickling" in caught.value.errors["file.x"][0]


def test_bytes_that_are_not_a_zip_are_refused_under_the_field():
    with pytest.raises(TensorCodecError) as caught:
        decode_npz(b"\x93NUMPY this is an npy, not an npz", max_bytes=LIMIT, field="upload")
    assert caught.value.code == "undecodable"
    assert caught.value.errors["upload"][0].startswith("not an .npz (zip) archive")


def test_a_member_that_is_not_npy_is_refused_by_name():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", np.lib.format.MAGIC_PREFIX + b"")
        archive.writestr("notes.txt", b"hello")
    with pytest.raises(TensorCodecError) as caught:
        decode_npz(buffer.getvalue(), max_bytes=LIMIT)
    assert caught.value.errors["file.notes.txt"] == ["member 'notes.txt' is not a .npy file"]
    assert "file.x" in caught.value.errors


def test_an_empty_archive_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    with pytest.raises(TensorCodecError) as caught:
        decode_npz(buffer.getvalue(), max_bytes=LIMIT)
    assert caught.value.errors == {"file": ["the .npz archive holds no arrays"]}
