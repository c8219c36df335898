"""Requests of different lengths merged with padding into one MiniLM run give what running each alone gives."""

from __future__ import annotations

import numpy as np

from apps.inference.runtime.codecs import decode_inputs
from apps.inference.runtime.validation import batch_axis, merge_batch, split_batch, validate_inputs
from tests.inference.runtime import minilm_path, minilm_request, session_for, signature_of

SENTENCES = [
    "I play the guitar.",
    "The electric guitar has six strings and a long neck made of maple wood.",
    "Soup.",
    "Stock markets fell sharply on Tuesday after the central bank raised rates.",
]


def run(inputs: dict) -> dict:
    (hidden,) = session_for(minilm_path()).run(None, inputs)
    return {"last_hidden_state": hidden}


def validated(text: str) -> dict:
    return validate_inputs(signature_of(minilm_path()), decode_inputs(minilm_request(text), max_bytes=1 << 20))


def test_a_padded_batch_splits_back_into_the_one_by_one_results():
    assert batch_axis(signature_of(minilm_path()))
    items = [validated(text) for text in SENTENCES]
    lengths = [item["input_ids"].shape[1] for item in items]
    assert len(set(lengths)) == len(SENTENCES)  # the test is about padding: every length differs

    merged, sizes = merge_batch(items, pad=True)
    merged = validate_inputs(signature_of(minilm_path()), merged)
    assert merged["input_ids"].shape == (len(SENTENCES), max(lengths))
    pieces = split_batch(run(merged), sizes)

    for item, piece, length in zip(items, pieces, lengths, strict=True):
        alone = run(item)["last_hidden_state"]
        assert piece["last_hidden_state"].shape == (1, length, 384)
        np.testing.assert_allclose(piece["last_hidden_state"], alone, atol=1e-4, rtol=0)


def test_a_batch_of_several_rows_per_request_splits_back_by_request():
    first = validated(SENTENCES[0])
    second = {name: np.concatenate([array, array]) for name, array in validated(SENTENCES[2]).items()}
    merged, sizes = merge_batch([first, second], pad=True)
    pieces = split_batch(run(merged), sizes)
    assert [piece["last_hidden_state"].shape[0] for piece in pieces] == [1, 2]
    np.testing.assert_allclose(pieces[1]["last_hidden_state"], run(second)["last_hidden_state"], atol=1e-4, rtol=0)
