"""Dynamic batching helpers: which models can be batched, and how requests merge into one batch and split
back."""

from __future__ import annotations

import numpy as np
import pytest

from apps.inference.runtime.validation import batch_axis, batch_size_of, merge_batch, split_batch
from tests.inference.runtime import iris_path, minilm_path, signature_of


def test_minilm_can_be_batched_dynamically():
    assert batch_axis(signature_of(minilm_path())) is True


def test_the_iris_classifier_with_a_fixed_batch_and_a_sequence_output_cannot():
    assert batch_axis(signature_of(iris_path())) is False


@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [
        ([["N", 4]], [[None, 2]]),
        ([[None]], [["N", 3, 3]]),
    ],
)
def test_dynamic_first_dimensions_everywhere_can_be_batched(inputs, outputs):
    signature = {
        "inputs": [{"name": f"i{n}", "elem_type": "float32", "shape": shape} for n, shape in enumerate(inputs)],
        "outputs": [{"name": f"o{n}", "elem_type": "float32", "shape": shape} for n, shape in enumerate(outputs)],
    }
    assert batch_axis(signature) is True


@pytest.mark.parametrize(
    "signature",
    [
        {"inputs": [{"name": "x", "elem_type": "float32", "shape": [1, 4]}], "outputs": []},
        {
            "inputs": [{"name": "x", "elem_type": "float32", "shape": ["N", 4]}],
            "outputs": [{"name": "y", "elem_type": "float32", "shape": [1]}],
        },
        {
            "inputs": [{"name": "x", "elem_type": "float32", "shape": None}],
            "outputs": [{"name": "y", "elem_type": "float32", "shape": ["N"]}],
        },
        {
            "inputs": [{"name": "x", "elem_type": "float32", "shape": []}],
            "outputs": [{"name": "y", "elem_type": "float32", "shape": ["N"]}],
        },
        {"inputs": [], "outputs": [{"name": "y", "elem_type": "float32", "shape": ["N"]}]},
    ],
    ids=["fixed-input", "fixed-output", "unknown-rank", "scalar", "no-inputs"],
)
def test_anything_without_a_dynamic_first_dimension_everywhere_cannot(signature):
    assert batch_axis(signature) is False


def test_batch_size_is_the_shared_first_dimension():
    assert batch_size_of({"a": np.zeros((3, 2)), "b": np.zeros((3,))}) == 3


@pytest.mark.parametrize("arrays", [{"a": np.zeros((3, 2)), "b": np.zeros((2,))}, {"a": np.float32(1)}, {}])
def test_batch_size_is_refused_when_there_is_no_shared_first_dimension(arrays):
    with pytest.raises(ValueError):
        batch_size_of(arrays)


def test_equal_shapes_merge_along_axis_zero_and_split_back():
    items = [{"x": np.full((1, 4), n, np.float32)} for n in range(3)] + [{"x": np.full((2, 4), 9, np.float32)}]
    merged, sizes = merge_batch(items)
    assert merged["x"].shape == (5, 4)
    assert list(sizes) == [1, 1, 1, 2]
    pieces = split_batch({"y": merged["x"] * 2, "labels": ["a", "b", "c", "d", "e"]}, sizes)
    assert [piece["y"].tolist() for piece in pieces[:3]] == [[[0.0] * 4], [[2.0] * 4], [[4.0] * 4]]
    assert pieces[3]["y"].shape == (2, 4)
    assert [piece["labels"] for piece in pieces] == [["a"], ["b"], ["c"], ["d", "e"]]


def test_different_lengths_without_padding_are_refused_so_the_caller_runs_them_separately():
    items = [{"input_ids": np.ones((1, 5), np.int64)}, {"input_ids": np.ones((1, 7), np.int64)}]
    with pytest.raises(ValueError, match="input_ids: the items differ beyond axis 0"):
        merge_batch(items)


def test_padding_fills_the_right_with_zeros_and_records_each_length():
    items = [
        {"input_ids": np.array([[101, 5, 102]]), "attention_mask": np.array([[1, 1, 1]])},
        {"input_ids": np.array([[101, 102]]), "attention_mask": np.array([[1, 1]])},
    ]
    merged, sizes = merge_batch(items, pad=True)
    assert merged["input_ids"].tolist() == [[101, 5, 102], [101, 102, 0]]
    assert merged["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert (sizes.lengths, sizes.padded_length) == ([3, 2], 3)


def test_split_trims_padded_sequence_axes_and_leaves_other_outputs_whole():
    items = [{"ids": np.ones((1, 4), np.int64)}, {"ids": np.ones((2, 2), np.int64)}]
    merged, sizes = merge_batch(items, pad=True)
    assert merged["ids"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]]
    hidden = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2)
    pooled = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)[:, :3]  # axis 1 of 3: not the padded length
    pieces = split_batch({"hidden": hidden, "pooled": np.ascontiguousarray(pooled)}, sizes)
    assert pieces[0]["hidden"].shape == (1, 4, 2)
    assert pieces[1]["hidden"].shape == (2, 2, 2)
    np.testing.assert_array_equal(pieces[1]["hidden"], hidden[1:3, :2])
    assert pieces[1]["pooled"].shape == (2, 3)


def test_split_with_a_plain_list_of_sizes_does_not_trim():
    pieces = split_batch({"y": np.zeros((3, 4))}, [1, 2])
    assert [piece["y"].shape for piece in pieces] == [(1, 4), (2, 4)]


def test_split_refuses_an_output_without_the_batch_on_axis_zero():
    with pytest.raises(ValueError, match="output total has 1 rows on axis 0, the merged batch has 3"):
        split_batch({"total": np.zeros((1,))}, [1, 2])


def test_merging_items_with_different_inputs_is_refused():
    with pytest.raises(ValueError, match="item 1 has inputs"):
        merge_batch([{"a": np.zeros((1, 2))}, {"b": np.zeros((1, 2))}])


def test_merging_items_with_different_dtypes_is_refused():
    with pytest.raises(ValueError, match="different dtypes"):
        merge_batch([{"a": np.zeros((1, 2), np.float32)}, {"a": np.zeros((1, 2), np.float64)}])


def test_string_inputs_are_padded_with_empty_strings():
    first = np.empty((1, 2), dtype=object)
    first[:] = [["a", "b"]]
    second = np.empty((1, 1), dtype=object)
    second[:] = [["c"]]
    merged, _ = merge_batch([{"t": first}, {"t": second}], pad=True)
    assert merged["t"].tolist() == [["a", "b"], ["c", ""]]
