"""Writing gpux.yml for a version: what the GPUX CLI reads (integer shapes), checked against the model."""

from __future__ import annotations

import pytest
import yaml
from django.core.exceptions import ValidationError

from apps.marketplace.models import ValidationStatus
from apps.marketplace.onnx.manifest import compare_with_signature, export_manifest, parse_manifest
from apps.marketplace.tasks import validate_version
from apps.marketplace.validation import export_version_manifest, import_manifest
from tests.marketplace.onnx_fixtures import iris_path, minilm_path

MINILM_SIGNATURE = {
    "inputs": [
        {"name": "input_ids", "elem_type": "int64", "shape": ["batch", "sequence"]},
        {"name": "attention_mask", "elem_type": "int64", "shape": ["batch", "sequence"]},
    ],
    "outputs": [{"name": "last_hidden_state", "elem_type": "float32", "shape": ["batch", "sequence", 384]}],
    "opsets": {"ai.onnx": 17},
    "producer": {"name": "pytorch", "version": "2.11"},
}


def gpux_cli_reads(data: dict) -> None:
    """What GPUX's GPUXConfig (pydantic) demands: name, model.source, inputs and outputs with ``type`` text and
    ``shape`` a list of integers, gpu memory in GB/MB/KB."""
    assert isinstance(data["name"], str) and isinstance(data["model"]["source"], str)
    for section in ("inputs", "outputs"):
        assert data[section]
        for spec in data[section].values():
            assert isinstance(spec["type"], str)
            assert all(isinstance(dim, int) for dim in spec.get("shape") or [])
    assert data["runtime"]["gpu"]["memory"][-2:] in ("GB", "MB", "KB")


def test_an_exported_manifest_has_integer_shapes_and_keeps_the_dimension_names():
    text = export_manifest(name="minilm", version="1.0.0", main_file="model.onnx", signature=MINILM_SIGNATURE)

    data = yaml.safe_load(text)
    gpux_cli_reads(data)
    assert data["model"] == {"source": "./model.onnx", "format": "onnx"}
    assert data["inputs"]["input_ids"] == {"type": "int64", "shape": [-1, -1], "required": True}
    assert data["outputs"]["last_hidden_state"] == {"type": "float32", "shape": [-1, -1, 384]}
    assert data["metadata"]["dynamic_axes"]["input_ids"] == {0: "batch", 1: "sequence"}
    assert data["metadata"]["opsets"] == {"ai.onnx": 17}


def test_an_exported_manifest_reads_back_and_agrees_with_its_model():
    text = export_manifest(name="minilm", version="1.0.0", main_file="model.onnx", signature=MINILM_SIGNATURE)

    manifest = parse_manifest(text)

    assert compare_with_signature(manifest, MINILM_SIGNATURE, main_file="model.onnx") == []


def test_an_imported_manifest_keeps_its_runtime_preprocessing_and_labels_on_export():
    base = parse_manifest(
        """
name: iris
model: {source: model.onnx}
inputs: {float_input: {type: float32, shape: [3, 2]}}
outputs: {label: {type: int64, shape: [3], labels: [setosa, versicolor, virginica]}}
runtime: {gpu: {memory: 1GB, backend: cuda}, batch_size: 4}
preprocessing: {normalize: standard}
"""
    )
    signature = {
        "inputs": [{"name": "float_input", "elem_type": "float32", "shape": [3, 2]}],
        "outputs": [{"name": "label", "elem_type": "int64", "shape": [3]}],
    }

    data = yaml.safe_load(
        export_manifest(name="iris", version="2", main_file="model.onnx", signature=signature, base=base)
    )

    assert data["runtime"] == {"gpu": {"memory": "1GB", "backend": "cuda"}, "batch_size": 4, "timeout": 30}
    assert data["preprocessing"] == {"normalize": "standard"}
    assert data["outputs"]["label"]["labels"] == ["setosa", "versicolor", "virginica"]


def test_a_manifest_that_disagrees_with_the_model_is_named_field_by_field():
    manifest = parse_manifest(
        """
name: minilm
model: {source: other.onnx}
inputs:
  - {name: input_ids, type: float32, shape: [1, 128]}
  - {name: pixels, type: float32}
outputs:
  - {name: last_hidden_state, type: float32, shape: [1, 128, 768]}
"""
    )

    assert compare_with_signature(manifest, MINILM_SIGNATURE, main_file="model.onnx") == [
        "model.source: “other.onnx” is not this version's model file “model.onnx”",
        "inputs[0].type: “float32”, but the model's is “int64”",
        "inputs[1].name: the model has no input “pixels” (it has attention_mask, input_ids)",
        "outputs[0].shape[2]: 768, but the model's is 384",
    ]


@pytest.mark.django_db
def test_a_validated_version_exports_a_manifest_for_the_gpux_cli(catalog):
    model = catalog.model("minilm", summary="Sentence embeddings", tags=["embeddings"])
    version = catalog.version(model)
    catalog.add(version, "model.onnx", minilm_path().read_bytes())
    version.refresh_from_db()
    validate_version.run(version.validation_job_id)
    version.refresh_from_db()

    data = yaml.safe_load(export_version_manifest(version))

    gpux_cli_reads(data)
    assert data["name"] == "minilm" and data["version"] == "1.0.0"
    assert data["description"] == "Sentence embeddings"
    assert set(data["inputs"]) == {"input_ids", "attention_mask", "token_type_ids"}
    assert data["metadata"]["portal_model"] == "acme/minilm"
    assert data["metadata"]["task"] == "feature-extraction"
    assert data["tags"] == ["embeddings"]


@pytest.mark.django_db
def test_a_version_not_validated_yet_cannot_be_exported(catalog):
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", iris_path().read_bytes())

    with pytest.raises(ValidationError) as refused:
        export_version_manifest(version)

    assert refused.value.message_dict == {
        "signature": ["The version has no signature yet: its validation has not passed."]
    }


@pytest.mark.django_db
def test_importing_a_manifest_stores_it_and_validation_checks_it_against_the_model(catalog):
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", iris_path().read_bytes())
    text = "name: iris\nmodel: {source: ./model.onnx}\ninputs: {float_input: {type: float32, shape: [3, 2]}}\n"
    text += "outputs: {label: {type: int64, labels: [setosa, versicolor, virginica]}}\n"
    text += "preprocessing: {normalize: none}\n"

    stored = import_manifest(version=version, text=text, actor=catalog.world.user("member"))
    version.refresh_from_db()
    validate_version.run(version.validation_job_id)
    version.refresh_from_db()

    assert stored.path == "gpux.yml" and stored.role == "manifest"
    assert version.validation_status == ValidationStatus.PASSED, version.validation_message
    assert version.onnx_info["checks"]["manifest"] == "passed"
    assert version.onnx_info["manifest"]["preprocessing"] == {"normalize": "none"}
    exported = yaml.safe_load(export_version_manifest(version))
    assert exported["outputs"]["label"]["labels"] == ["setosa", "versicolor", "virginica"]
    assert exported["preprocessing"] == {"normalize": "none"}


@pytest.mark.django_db
def test_a_manifest_naming_inputs_the_model_lacks_fails_validation(catalog):
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", iris_path().read_bytes())
    catalog.add(
        version,
        "gpux.yml",
        b"name: iris\nmodel: {source: model.onnx}\ninputs: {text: string}\noutputs: {label: int64}\n",
    )

    version.refresh_from_db()
    validate_version.run(version.validation_job_id)
    version.refresh_from_db()

    assert version.validation_status == ValidationStatus.FAILED
    assert version.validation_message == "gpux.yml: inputs[0].name: the model has no input “text” (it has float_input)"


@pytest.mark.django_db
def test_an_invalid_manifest_is_refused_on_import_and_nothing_is_stored(catalog):
    version = catalog.version(catalog.model())
    catalog.add(version, "model.onnx", iris_path().read_bytes())

    with pytest.raises(ValidationError) as refused:
        import_manifest(
            version=version,
            text="name: iris\nmodel: {source: model.onnx}\ninputs: {x: {type: float32, shape: 3}}\n",
            actor=catalog.world.user("member"),
        )

    assert refused.value.message_dict == {
        "manifest": [
            "inputs.x.shape: expected a list of integers or names (a name or -1 for a dynamic dimension)",
            "outputs: at least one output is required",
        ]
    }
    assert list(version.files.values_list("path", flat=True)) == ["model.onnx"]
