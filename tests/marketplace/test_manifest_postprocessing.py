"""gpux.yml's ``postprocessing`` (the portal's extension): pooling, normalize, softmax and output are validated
with path-named errors, kept by validation and written back by ``export_manifest``."""

from __future__ import annotations

import pytest
import yaml

from apps.marketplace.onnx.manifest import ManifestError, export_manifest, parse_manifest, validate_manifest

BASE = """
name: minilm
model: {source: model.onnx}
inputs: {input_ids: {type: int64, shape: [batch, sequence]}}
outputs:
  last_hidden_state: {type: float32, shape: [batch, sequence, 384]}
  pooler_output: {type: float32, shape: [batch, 384]}
"""

SIGNATURE = {
    "inputs": [{"name": "input_ids", "elem_type": "int64", "shape": ["batch", "sequence"]}],
    "outputs": [
        {"name": "last_hidden_state", "elem_type": "float32", "shape": ["batch", "sequence", 384]},
        {"name": "pooler_output", "elem_type": "float32", "shape": ["batch", 384]},
    ],
}


def with_postprocessing(section: str) -> str:
    return BASE + f"postprocessing: {section}\n"


def errors_of(text: str) -> list[str]:
    with pytest.raises(ManifestError) as refused:
        parse_manifest(text)
    return refused.value.errors


def test_a_full_postprocessing_section_is_kept():
    manifest = parse_manifest(
        with_postprocessing("{pooling: mean, normalize: true, softmax: false, output: last_hidden_state}")
    )

    assert manifest["postprocessing"] == {
        "pooling": "mean",
        "normalize": True,
        "softmax": False,
        "output": "last_hidden_state",
    }


def test_each_pooling_is_accepted_and_its_case_does_not_matter():
    for pooling in ("mean", "cls", "max", "none", "MEAN"):
        assert parse_manifest(with_postprocessing(f"{{pooling: {pooling}}}"))["postprocessing"] == {
            "pooling": pooling.lower()
        }


def test_only_the_fields_given_are_kept_and_no_section_means_none():
    assert parse_manifest(with_postprocessing("{softmax: true}"))["postprocessing"] == {"softmax": True}
    assert "postprocessing" not in parse_manifest(BASE)


def test_an_unknown_pooling_names_the_field_and_the_choices():
    assert errors_of(with_postprocessing("{pooling: avg}")) == [
        "postprocessing.pooling: unknown pooling 'avg'; expected one of cls, max, mean, none"
    ]


def test_normalize_and_softmax_must_be_true_or_false():
    assert errors_of(with_postprocessing("{normalize: yes please, softmax: 1}")) == [
        "postprocessing.normalize: expected true or false",
        "postprocessing.softmax: expected true or false",
    ]


def test_an_output_the_manifest_does_not_list_is_refused():
    assert errors_of(with_postprocessing("{pooling: cls, output: logits}")) == [
        "postprocessing.output: the manifest has no output “logits” (it has last_hidden_state, pooler_output)"
    ]


def test_an_unknown_field_and_a_section_that_is_not_a_mapping_are_refused():
    assert errors_of(with_postprocessing("{pool: mean}")) == [
        "postprocessing.pool: unknown field; expected one of normalize, output, pooling, softmax"
    ]
    assert errors_of(with_postprocessing("mean")) == ["postprocessing: expected a mapping of fields"]


def test_every_bad_field_is_reported_at_once():
    errors = errors_of(with_postprocessing("{pooling: sum, normalize: 3, output: nope}"))

    assert [error.split(":")[0] for error in errors] == [
        "postprocessing.pooling",
        "postprocessing.normalize",
        "postprocessing.output",
    ]


def test_export_writes_the_postprocessing_section_back():
    base = parse_manifest(with_postprocessing("{pooling: cls, normalize: true, output: last_hidden_state}"))

    text = export_manifest(name="minilm", version="1.0.0", main_file="model.onnx", signature=SIGNATURE, base=base)

    assert yaml.safe_load(text)["postprocessing"] == {
        "pooling": "cls",
        "normalize": True,
        "output": "last_hidden_state",
    }
    assert parse_manifest(text)["postprocessing"] == base["postprocessing"]


def test_export_without_postprocessing_writes_none():
    text = export_manifest(
        name="minilm", version="1.0.0", main_file="model.onnx", signature=SIGNATURE, base=parse_manifest(BASE)
    )

    assert "postprocessing" not in yaml.safe_load(text)


def test_the_example_manifests_of_the_inference_tests_are_already_normalized():
    from tests.inference.onnx_models import IMAGE_MANIFEST, IRIS_MANIFEST, MINILM_MANIFEST

    for manifest in (MINILM_MANIFEST, IRIS_MANIFEST, IMAGE_MANIFEST):
        assert validate_manifest(manifest) == manifest


def test_an_empty_section_is_kept_on_export_as_it_turns_the_default_pooling_off():
    base = parse_manifest(with_postprocessing("{}"))

    text = export_manifest(name="minilm", version="1.0.0", main_file="model.onnx", signature=SIGNATURE, base=base)

    assert base["postprocessing"] == {}
    assert yaml.safe_load(text)["postprocessing"] == {}
