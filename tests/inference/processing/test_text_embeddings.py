"""A sentence through MiniLM's real tokenizer.json and model comes back as a normalized 384-float embedding."""

from __future__ import annotations

import numpy as np
import pytest

from apps.inference.processing import build_processor
from tests.inference.onnx_models import (
    MINILM_MANIFEST,
    cpu_session,
    minilm_path,
    minilm_tokenizer_path,
    run_model,
    signature_of,
    version_files,
)

GUITAR = "A man is playing the guitar."
ALSO_GUITAR = "Someone is playing an acoustic guitar."
UNRELATED = "The stock market fell sharply today."


@pytest.fixture(scope="module")
def minilm():
    return cpu_session(minilm_path()), signature_of(minilm_path())


def processor_for(signature, manifest=MINILM_MANIFEST):
    return build_processor(
        manifest=manifest, signature=signature, file_path=version_files({"tokenizer.json": minilm_tokenizer_path()})
    )


def embed(minilm, texts, manifest=MINILM_MANIFEST):
    session, signature = minilm
    processor = processor_for(signature, manifest)
    inputs = processor.preprocess({"text": texts})
    return np.array(processor.postprocess(run_model(session, inputs), inputs)["embeddings"])


def test_two_sentences_about_guitars_are_close_and_an_unrelated_one_is_not(minilm):
    vectors = embed(minilm, [GUITAR, ALSO_GUITAR, UNRELATED])

    assert vectors @ vectors[0] == pytest.approx([1.0, vectors[1] @ vectors[0], vectors[2] @ vectors[0]])
    assert vectors[1] @ vectors[0] > 0.5
    assert vectors[2] @ vectors[0] < 0.2


def test_one_sentence_gives_one_unit_length_embedding_of_384_floats(minilm):
    answer = embed(minilm, GUITAR)

    assert answer.shape == (1, 384)
    assert np.linalg.norm(answer[0]) == pytest.approx(1.0, abs=1e-5)


def test_a_batch_is_padded_to_its_longest_text_with_the_mask_marking_the_padding(minilm):
    processor = processor_for(minilm[1])

    inputs = processor.preprocess({"text": ["guitar", "a much longer sentence about playing the guitar"]})

    assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(array.dtype == np.int64 for array in inputs.values())
    longest = int(inputs["attention_mask"][1].sum())
    assert inputs["input_ids"].shape == (2, longest)
    assert inputs["attention_mask"][0].tolist() == [1, 1, 1] + [0] * (longest - 3)
    assert inputs["input_ids"][0, 0] == 101 and inputs["input_ids"][0, 2] == 102  # [CLS] guitar [SEP]


def test_padding_does_not_change_a_sentences_embedding(minilm):
    alone = embed(minilm, [GUITAR])[0]
    beside_a_longer_one = embed(minilm, [GUITAR, UNRELATED + " " + ALSO_GUITAR])[0]

    assert beside_a_longer_one == pytest.approx(alone, abs=1e-4)


def test_only_the_inputs_the_signature_has_are_produced(minilm):
    signature = {**minilm[1], "inputs": [entry for entry in minilm[1]["inputs"] if entry["name"] != "token_type_ids"]}

    inputs = processor_for(signature).preprocess({"text": GUITAR})

    assert set(inputs) == {"input_ids", "attention_mask"}


def test_a_tokenizer_model_without_postprocessing_is_mean_pooled_and_normalized_by_default(minilm):
    manifest = {key: value for key, value in MINILM_MANIFEST.items() if key != "postprocessing"}

    by_default = embed(minilm, [GUITAR, UNRELATED], manifest)
    declared = embed(minilm, [GUITAR, UNRELATED])

    assert by_default == pytest.approx(declared)
    assert processor_for(minilm[1], manifest).describe()["answer"] == "embeddings"


def test_tensors_sent_by_input_name_pass_through_and_are_still_pooled(minilm):
    session, signature = minilm
    processor = processor_for(signature)
    tensors = processor.preprocess({"text": GUITAR})

    assert processor.preprocess({name: array.tolist() for name, array in tensors.items()}) is None
    answer = processor.postprocess(run_model(session, tensors), tensors)
    assert np.array(answer["embeddings"]) == pytest.approx(embed(minilm, GUITAR), abs=1e-6)


def test_the_try_it_form_of_a_text_model_is_one_textarea(minilm):
    description = processor_for(minilm[1]).describe()

    assert description["kind"] == "text"
    assert [(field["name"], field["type"]) for field in description["fields"]] == [("text", "textarea")]
    assert description["fields"][0]["max_tokens"] == 128


def test_an_empty_postprocessing_section_turns_the_default_pooling_off(minilm):
    session, signature = minilm
    processor = processor_for(signature, {**MINILM_MANIFEST, "postprocessing": {}})
    inputs = processor.preprocess({"text": GUITAR})

    assert processor.postprocess(run_model(session, inputs), inputs) is None
