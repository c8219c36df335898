"""The ``.npz`` bytes that carry a prediction's inputs to the worker and its outputs back (``arrays_to_npz``) hold no
pickle: string tensors (object arrays of ``str``, as ONNX Runtime takes and answers them) are stored as their UTF-8
bytes with their lengths, in the space the text takes, and read back as they were."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from apps.inference.execution import arrays_to_npz, npz_to_arrays


def strings(values, shape=None) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array.reshape(shape or (len(values),))


def test_strings_numbers_and_unicode_arrays_come_back_as_they_were():
    words = strings(["Cat", "émile", "", "日本語", "a\x00b"], (5, 1))
    stored = arrays_to_npz({"text": words, "x": np.arange(6, dtype=np.float32).reshape(2, 3), "u": np.array(["ab"])})

    back = npz_to_arrays(stored)

    assert back["text"].dtype == object and back["text"].shape == (5, 1)
    assert back["text"].tolist() == words.tolist()
    assert back["x"].dtype == np.float32 and back["x"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["u"].tolist() == ["ab"]


def test_numpy_reads_the_numeric_members_without_unpickling():
    stored = arrays_to_npz({"text": strings(["a"]), "label": np.array([3], dtype=np.int64)})

    with np.load(io.BytesIO(stored), allow_pickle=False) as archive:
        assert archive["label"].tolist() == [3]
        assert "text.utf8" in archive.files


def test_one_long_string_among_many_short_ones_costs_what_the_text_costs():
    # As a fixed-width <U array this would be 100,001 x 1,000,000 x 4 bytes: 400 GB.
    words = strings(["x" * 1_000_000, *[""] * 100_000])

    stored = arrays_to_npz({"text": words})

    assert len(stored) < 2_000_000
    assert npz_to_arrays(stored)["text"][0] == "x" * 1_000_000


def test_empty_and_scalar_string_tensors_keep_their_shape():
    empty = np.empty((0, 3), dtype=object)
    scalar = np.empty((), dtype=object)
    scalar[()] = "one"

    back = npz_to_arrays(arrays_to_npz({"empty": empty, "scalar": scalar}))

    assert back["empty"].shape == (0, 3)
    assert back["scalar"].shape == () and back["scalar"][()] == "one"


def test_an_object_array_of_something_else_than_text_is_refused():
    with pytest.raises(ValueError, match="not text"):
        arrays_to_npz({"odd": strings([{"a": 1}])})


def test_a_string_member_whose_lengths_do_not_match_its_bytes_is_refused():
    stored = io.BytesIO(arrays_to_npz({"text": strings(["abc"])}))
    damaged = io.BytesIO()
    with zipfile.ZipFile(stored) as source, zipfile.ZipFile(damaged, "w") as target:
        target.writestr("text.utf8", source.read("text.utf8")[:-1])

    with pytest.raises(ValueError, match="damaged"):
        npz_to_arrays(damaged.getvalue())
