"""The tokenizer a manifest names must be a file of the version that the tokenizers library reads; a loaded one
is shared by every processor built on the same file."""

from __future__ import annotations

import pytest

from apps.inference.processing import ProcessingError, build_processor
from tests.inference.onnx_models import MINILM_MANIFEST, minilm_path, minilm_tokenizer_path, signature_of, version_files


@pytest.fixture(scope="module")
def signature():
    return signature_of(minilm_path())


def build(signature, files, manifest=MINILM_MANIFEST):
    return build_processor(manifest=manifest, signature=signature, file_path=version_files(files))


def test_a_manifest_naming_a_tokenizer_file_the_version_lacks_is_refused(signature):
    with pytest.raises(ProcessingError) as caught:
        build(signature, {"model.onnx": minilm_path()})

    assert caught.value.code == "missing_file"
    assert caught.value.errors == {
        "preprocessing.tokenizer": ["the version has no file “tokenizer.json”; upload it beside the model"]
    }


def test_a_file_path_that_points_nowhere_counts_as_missing(signature, tmp_path):
    with pytest.raises(ProcessingError) as caught:
        build(signature, {"tokenizer.json": tmp_path / "gone.json"})

    assert caught.value.code == "missing_file"


def test_a_tokenizer_path_outside_the_version_is_refused(signature):
    manifest = {**MINILM_MANIFEST, "preprocessing": {"tokenizer": "../../etc/passwd"}}

    with pytest.raises(ProcessingError) as caught:
        build(signature, {"tokenizer.json": minilm_tokenizer_path()}, manifest)

    assert list(caught.value.errors) == ["preprocessing.tokenizer"]
    assert caught.value.code == "bad_manifest"


def test_a_file_that_is_not_a_tokenizer_is_refused_with_its_name(signature, tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"not": "a tokenizer"}')

    with pytest.raises(ProcessingError) as caught:
        build(signature, {"tokenizer.json": tmp_path / "tokenizer.json"})

    assert caught.value.code == "bad_manifest"
    assert caught.value.errors["preprocessing.tokenizer"][0].startswith(
        "tokenizer.json is not a tokenizer the tokenizers library reads"
    )


def test_a_leading_dot_slash_names_the_same_version_file(signature):
    manifest = {**MINILM_MANIFEST, "preprocessing": {"tokenizer": "./tokenizer.json"}}

    processor = build(signature, {"tokenizer.json": minilm_tokenizer_path()}, manifest)

    assert processor.kind == "text"


def test_processors_on_the_same_tokenizer_file_share_one_loaded_tokenizer(signature):
    first = build(signature, {"tokenizer.json": minilm_tokenizer_path()})
    second = build(signature, {"tokenizer.json": minilm_tokenizer_path()})

    assert first.text.tokenizer is second.text.tokenizer


def test_max_length_comes_from_the_manifest_before_the_tokenizer_file(signature):
    manifest = {**MINILM_MANIFEST, "preprocessing": {"tokenizer": "tokenizer.json", "max_length": 16}}

    processor = build(signature, {"tokenizer.json": minilm_tokenizer_path()}, manifest)
    inputs = processor.preprocess({"text": "word " * 100})

    assert inputs["input_ids"].shape == (1, 16)
    assert processor.describe()["fields"][0]["max_tokens"] == 16


def test_a_max_length_with_no_room_for_text_is_refused(signature):
    manifest = {**MINILM_MANIFEST, "preprocessing": {"tokenizer": "tokenizer.json", "max_length": 2}}

    with pytest.raises(ProcessingError) as caught:
        build(signature, {"tokenizer.json": minilm_tokenizer_path()}, manifest)

    assert list(caught.value.errors) == ["preprocessing.max_length"]


def test_a_model_that_fixes_its_sequence_length_gets_texts_padded_to_it(signature):
    fixed = {
        **signature,
        "inputs": [{**entry, "shape": [1, 32]} for entry in signature["inputs"]],
    }

    inputs = build(fixed, {"tokenizer.json": minilm_tokenizer_path()}).preprocess({"text": "guitar"})

    assert inputs["input_ids"].shape == (1, 32)
    assert inputs["attention_mask"].sum() == 3
