"""Each bad text input answers a ProcessingError naming the field; a text that is too long is truncated."""

from __future__ import annotations

import numpy as np
import pytest

from apps.inference.processing import ProcessingError, build_processor
from tests.inference.onnx_models import (
    IRIS_MANIFEST,
    MINILM_MANIFEST,
    cpu_session,
    minilm_path,
    minilm_tokenizer_path,
    run_model,
    signature_of,
    sklearn_iris_path,
    version_files,
)


@pytest.fixture(scope="module")
def minilm():
    signature = signature_of(minilm_path())
    processor = build_processor(
        manifest=MINILM_MANIFEST,
        signature=signature,
        file_path=version_files({"tokenizer.json": minilm_tokenizer_path()}),
    )
    return cpu_session(minilm_path()), processor


def refusal(processor, raw) -> ProcessingError:
    with pytest.raises(ProcessingError) as caught:
        processor.preprocess(raw)
    return caught.value


def test_an_empty_list_of_texts_is_refused(minilm):
    error = refusal(minilm[1], {"text": []})

    assert error.errors == {"inputs.text": ["the list of texts is empty; send at least one"]}
    assert error.code == "invalid"


def test_a_number_instead_of_text_is_refused(minilm):
    error = refusal(minilm[1], {"text": 42})

    assert list(error.errors) == ["inputs.text"]
    assert "expected a text or a list of texts" in error.errors["inputs.text"][0]


def test_a_non_string_item_in_a_list_is_named_by_its_index(minilm):
    error = refusal(minilm[1], {"text": ["fine", {"not": "text"}, None]})

    # The value is named as JSON names it, as the tensor codecs' refusals do ("an object", not "a mapping").
    assert error.errors == {
        "inputs.text[1]": ["expected text, received an object"],
        "inputs.text[2]": ["expected text, received null"],
    }


def test_a_blank_text_is_refused(minilm):
    error = refusal(minilm[1], {"text": "   "})

    assert error.errors == {"inputs.text": ["the text is empty"]}


def test_a_text_longer_than_max_length_is_truncated_not_refused(minilm):
    session, processor = minilm
    long_text = " ".join(["guitar"] * 5000)

    inputs = processor.preprocess({"text": [long_text, "short"]})

    assert inputs["input_ids"].shape == (2, 128)
    assert inputs["input_ids"][0, -1] == 102  # still ends with [SEP]
    embeddings = processor.postprocess(run_model(session, inputs), inputs)["embeddings"]
    assert len(embeddings) == 2 and np.linalg.norm(embeddings[0]) == pytest.approx(1.0, abs=1e-5)


def test_a_field_beside_text_is_refused_by_name(minilm):
    error = refusal(minilm[1], {"text": "hello", "attention_mask": [[1]]})

    assert list(error.errors) == ["inputs.attention_mask"]
    assert "send inputs.text alone" in error.errors["inputs.attention_mask"][0]


def test_text_for_a_model_without_a_tokenizer_says_what_the_model_takes(tmp_path):
    path = sklearn_iris_path(tmp_path)
    processor = build_processor(manifest=IRIS_MANIFEST, signature=signature_of(path), file_path=version_files({}))

    error = refusal(processor, {"text": "a long-petalled iris"})

    assert error.code == "unsupported_input"
    assert error.errors == {
        "inputs.text": [
            "this model does not read text (its gpux.yml names no tokenizer); "
            "it takes tensors by input name: float_input (float32 [?, 4])"
        ]
    }


def test_an_image_for_a_text_model_says_it_reads_text(minilm):
    error = refusal(minilm[1], {"image": "iVBORw0KGgo="})

    assert error.code == "unsupported_input"
    assert error.errors["inputs.image"][0].endswith("it reads text: send inputs.text")
