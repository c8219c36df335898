"""Reading gpux.yml: the GPUX runtime's own examples parse; every bad field is named by its path."""

from __future__ import annotations

import pytest

from apps.marketplace.onnx.manifest import ManifestError, parse_manifest

# The README example of the GPUX runtime (github.com/jmorenobl/gpux): inputs and outputs as mappings.
GPUX_README_EXAMPLE = """
name: sentiment-analysis
version: 1.0.0

model:
  source: ./model.onnx
  format: onnx

inputs:
  text:
    type: string
    max_length: 512
    required: true

outputs:
  sentiment:
    type: float32
    shape: [1, 2]
    labels: [negative, positive]

runtime:
  gpu:
    memory: 2GB
    backend: auto
"""

# The list form, as GPUX's parser stores it, with every optional section.
LIST_FORM = """
name: minilm
version: "2"
description: Sentence embeddings
model: {source: model.onnx, format: onnx, version: "1"}
inputs:
  - {name: input_ids, type: int64, shape: [batch, sequence]}
  - {name: attention_mask, type: int64, shape: [-1, -1]}
outputs:
  - {name: last_hidden_state, type: float, shape: [batch, sequence, 384]}
runtime: {gpu: {memory: 512mb, backend: cuda}, batch_size: 8, timeout: 10, enable_profiling: false}
serving: {port: 8080, host: 0.0.0.0, batch_size: 4, timeout: 5, max_workers: 2}
preprocessing: {tokenizer: tokenizer.json, max_length: 128, normalize: none}
metadata: {team: search}
tags: [embeddings]
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ManifestError) as refused:
        parse_manifest(text)
    return refused.value.errors


def test_the_gpux_readme_example_parses():
    manifest = parse_manifest(GPUX_README_EXAMPLE)

    assert manifest["name"] == "sentiment-analysis"
    assert manifest["model"] == {"source": "./model.onnx", "format": "onnx"}
    assert manifest["inputs"] == [
        {"name": "text", "type": "string", "shape": None, "required": True, "max_length": 512}
    ]
    assert manifest["outputs"] == [
        {"name": "sentiment", "type": "float32", "shape": [1, 2], "labels": ["negative", "positive"]}
    ]
    assert manifest["runtime"] == {"gpu": {"memory": "2GB", "backend": "auto"}}


def test_the_list_form_with_every_section_parses_and_is_normalized():
    manifest = parse_manifest(LIST_FORM)

    assert manifest["version"] == "2"
    assert manifest["inputs"][0]["shape"] == ["batch", "sequence"]
    assert manifest["inputs"][1]["shape"] == [None, None]  # -1: dynamic
    assert manifest["outputs"][0]["type"] == "float32"  # "float" is float32
    assert manifest["runtime"] == {
        "gpu": {"memory": "512MB", "backend": "cuda"},
        "batch_size": 8,
        "timeout": 10,
        "enable_profiling": False,
    }
    assert manifest["preprocessing"] == {"tokenizer": "tokenizer.json", "normalize": "none", "max_length": 128}
    assert manifest["tags"] == ["embeddings"]


def test_a_shape_that_is_not_a_list_of_integers_or_names_names_its_field():
    text = LIST_FORM.replace("shape: [batch, sequence]}", "shape: {a: 1}}", 1)

    assert errors_of(text) == [
        "inputs[0].shape: expected a list of integers or names (a name or -1 for a dynamic dimension)"
    ]


def test_every_bad_field_is_reported_at_once_with_its_path():
    text = """
name: "bad name!"
model: {format: tflite}
inputs:
  text: {type: complex}
  ids: {type: int64, shape: [1, -5], required: "yes"}
outputs: []
runtime: {gpu: {memory: lots, backend: quantum}, batch_size: 0}
preprocessing: {resize: [224], max_length: -1}
runtme: {}
"""
    assert errors_of(text) == [
        "runtme: unknown field; expected one of description, examples, inputs, metadata, model, name, outputs, "
        "postprocessing, preprocessing, runtime, serving, tags, version",
        "name: letters, digits, dots, dashes and underscores, starting with a letter or digit",
        "model.source: this field is required",
        "model.format: unsupported format 'tflite'; expected onnx",
        "inputs.text.type: unknown type 'complex'; expected one of float32, float16, float64, bfloat16, int8, int16, "
        "int32, int64, uint8, uint16, uint32, uint64, bool, string",
        "inputs.ids.shape[1]: a dimension is a number of at least 0, or -1 when dynamic",
        "inputs.ids.required: expected true or false",
        "outputs: at least one output is required",
        "runtime.gpu.memory: expected an amount such as 2GB, 512MB or 1024KB",
        "runtime.gpu.backend: unknown backend 'quantum'; expected one of auto, cuda, tensorrt, rocm, openvino, "
        "coreml, directml, dx12, metal, vulkan, cpu",
        "runtime.batch_size: expected a number between 1 and 65536",
        "preprocessing.max_length: expected a number between 1 and 1000000",
        "preprocessing.resize: expected [width, height], two whole numbers",
    ]


def test_missing_required_sections_are_named():
    assert errors_of("name: x\n") == [
        "model: this field is required (model.source names the ONNX file)",
        "inputs: at least one input is required",
        "outputs: at least one output is required",
    ]


def test_empty_inputs_and_outputs_are_refused():
    errors = errors_of("name: x\nmodel: {source: m.onnx}\ninputs: []\noutputs: {}\n")

    assert errors == ["inputs: at least one input is required", "outputs: at least one output is required"]


def test_not_yaml_is_refused_with_its_line():
    errors = errors_of("name: x\ninputs: [unclosed\n")

    assert len(errors) == 1 and errors[0].startswith("gpux.yml: not valid YAML (line 3, column 1)")


def test_a_document_that_is_not_a_mapping_is_refused():
    assert errors_of("- just\n- a list\n") == [
        "gpux.yml: expected a mapping of fields (name, version, model, inputs, outputs...)"
    ]


def test_yaml_aliases_are_refused_so_that_a_billion_laughs_cannot_expand():
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'

    errors = errors_of(bomb)

    assert len(errors) == 1
    assert errors[0].startswith("gpux.yml: not valid YAML (line 2")  # where, so the author finds it
    assert "anchors and aliases (*name) are not allowed" in errors[0]


def test_python_object_tags_are_not_constructed():
    errors = errors_of("name: !!python/object/apply:os.system ['true']\n")

    assert len(errors) == 1 and errors[0].startswith("gpux.yml: not valid YAML")


def test_bytes_that_are_not_utf8_or_too_many_are_refused():
    with pytest.raises(ManifestError) as not_utf8:
        parse_manifest(b"name: \xff\xfe\n")
    assert not_utf8.value.errors == ["gpux.yml: not valid UTF-8 text (byte 6)."]

    with pytest.raises(ManifestError) as too_big:
        parse_manifest(b"#" * 2000, max_bytes=1000)
    assert too_big.value.errors == ["gpux.yml: the file is 2000 bytes; the limit is 1000."]


EXAMPLES_MANIFEST = """
name: embedder
model: {source: model.onnx}
inputs:
  - {name: input_ids, type: int64, shape: [batch, sequence]}
outputs:
  - {name: last_hidden_state, type: float32, shape: [batch, sequence, 384]}
preprocessing: {tokenizer: tokenizer.json}
"""


def test_examples_are_kept_as_the_inputs_the_api_takes():
    manifest = parse_manifest(EXAMPLES_MANIFEST + "examples:\n  - text: A man is playing the guitar.\n")
    assert manifest["examples"] == [{"text": "A man is playing the guitar."}]


def test_an_example_naming_something_the_model_does_not_take_is_refused_with_its_path():
    with pytest.raises(ManifestError) as caught:
        parse_manifest(EXAMPLES_MANIFEST + "examples:\n  - sentence: hello\n  - image: abc\n  - 3\n")
    assert caught.value.errors == [
        "examples[0].sentence: not an input this model takes (it takes text, input_ids)",
        "examples[1].image: not an input this model takes (it takes text, input_ids)",
        "examples[2]: expected a mapping of inputs, e.g. {text: ...} or {input_name: [[...]]}",
    ]
