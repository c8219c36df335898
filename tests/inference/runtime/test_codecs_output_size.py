"""``nbytes_of`` measures outputs for the output size cap: tensor bytes, string lengths, non-tensor estimates."""

from __future__ import annotations

import numpy as np

from apps.inference.runtime.codecs import nbytes_of


def test_numeric_tensors_count_their_buffer_bytes():
    outputs = {"a": np.zeros((2, 384), np.float32), "b": np.zeros(3, np.int64), "c": np.zeros(5, np.bool_)}
    assert nbytes_of(outputs) == 2 * 384 * 4 + 3 * 8 + 5


def test_string_tensors_count_their_utf8_length_not_their_pointers():
    text = np.empty(2, dtype=object)
    text[:] = ["é" * 100, "abc"]
    assert nbytes_of({"text": text}) == 203
    assert nbytes_of({"text": np.array(["abcd", "ab"])}) == 6


def test_non_tensor_outputs_are_estimated():
    probabilities = [{0: 0.5, 1: 0.5}, {0: 0.25, 1: 0.75}]
    assert nbytes_of({"probabilities": probabilities}) == 4 * (8 + 8)


def test_no_outputs_weigh_nothing():
    assert nbytes_of({}) == 0
