"""The inputs a performance card is measured with are made up from the signature: the batch dimension takes the
batch size tried, other dynamic dimensions the sequence length (32, or the manifest's smaller ``max_length``),
token ids stay small and in range, attention masks are ones, token type ids zeros, floats random normal; the
inputs fit the signature exactly. Pure: no database."""

from __future__ import annotations

import numpy as np

from apps.inference.performance import batch_sizes, sequence_length, synthesize_inputs
from apps.inference.runtime.validation import validate_inputs
from tests.inference.onnx_models import MINILM_MANIFEST, minilm_path, signature_of, signature_of_bytes
from tests.inference.pipeline_models import iris_bytes, model_bytes

MINILM = signature_of(minilm_path())


def test_minilm_inputs_are_token_ids_in_range_a_mask_of_ones_and_zero_type_ids():
    arrays = synthesize_inputs(MINILM, batch=4, sequence=32, rng=np.random.default_rng(0))
    assert {name: array.shape for name, array in arrays.items()} == {
        "input_ids": (4, 32),
        "attention_mask": (4, 32),
        "token_type_ids": (4, 32),
    }
    assert all(array.dtype == np.int64 for array in arrays.values())
    assert arrays["input_ids"].min() >= 0 and arrays["input_ids"].max() < 1000
    assert len(np.unique(arrays["input_ids"])) > 10
    assert (arrays["attention_mask"] == 1).all()
    assert (arrays["token_type_ids"] == 0).all()
    assert validate_inputs(MINILM, arrays).keys() == arrays.keys()


def test_float_inputs_are_random_normal_of_the_declared_type_and_fixed_dimensions_stay():
    signature = signature_of_bytes(iris_bytes())
    arrays = synthesize_inputs(signature, batch=8, sequence=32, rng=np.random.default_rng(0))
    features = arrays["float_input"]
    assert features.shape == (8, 4) and features.dtype == np.float32
    assert abs(float(features.mean())) < 1.0 and 0.3 < float(features.std()) < 2.0


def test_the_sequence_length_is_32_or_the_manifests_smaller_max_length():
    assert sequence_length(MINILM_MANIFEST) == 32  # its max_length is 128
    assert sequence_length({"preprocessing": {"max_length": 16}}) == 16
    assert sequence_length({}) == 32


def test_batch_sizes_double_up_to_the_maximum_for_a_batchable_model_only():
    assert batch_sizes(MINILM, 64) == [1, 2, 4, 8, 16, 32, 64]
    assert batch_sizes(MINILM, 20) == [1, 2, 4, 8, 16]
    fixed = signature_of_bytes(model_bytes("reshape"))  # its output is a fixed [2, 3]: no batch axis
    assert batch_sizes(fixed, 64) == [1]
