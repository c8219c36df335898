"""``postprocessing.pooling`` (mean over the attention mask, cls, max, none) and ``normalize``, applied to a
[batch, sequence, dim] output of a real model: an Identity that hands the hidden states it is fed back."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from apps.inference.processing import ProcessingError, build_processor
from tests.inference.onnx_models import cpu_session, run_model, signature_of, version_files
from tests.marketplace.onnx_fixtures import make_model, save

HIDDEN = np.array(
    [
        [[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]],  # the third token is padding
        [[0.0, 2.0], [2.0, 0.0], [4.0, -2.0]],
    ],
    dtype=np.float32,
)
MASK = np.array([[1, 1, 0], [1, 1, 1]], dtype=np.int64)


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    directory = tmp_path_factory.mktemp("identity")
    node = helper.make_node("Identity", ["hidden"], ["last_hidden_state"], name="identity")
    path = directory / save(
        make_model(
            [node],
            [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "sequence", 2])],
            [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", 2])],
        ),
        directory,
    )
    return cpu_session(path), signature_of(path)


def manifest_with(postprocessing):
    return {
        "name": "identity",
        "outputs": [{"name": "last_hidden_state", "type": "float32", "shape": ["batch", "sequence", 2]}],
        "postprocessing": postprocessing,
    }


def pooled(identity, postprocessing, mask=MASK):
    session, signature = identity
    processor = build_processor(
        manifest=manifest_with(postprocessing), signature=signature, file_path=version_files({})
    )
    outputs = run_model(session, {"hidden": HIDDEN})
    model_inputs = {"hidden": HIDDEN} if mask is None else {"hidden": HIDDEN, "attention_mask": mask}
    return np.array(processor.postprocess(outputs, model_inputs)["embeddings"])


def test_mean_pooling_leaves_out_the_padded_tokens(identity):
    assert pooled(identity, {"pooling": "mean"}) == pytest.approx(np.array([[2.0, 2.0], [2.0, 0.0]]))


def test_mean_pooling_without_a_mask_averages_every_token(identity):
    assert pooled(identity, {"pooling": "mean"}, mask=None)[0] == pytest.approx([104 / 3, 104 / 3])


def test_cls_pooling_takes_the_first_token(identity):
    assert pooled(identity, {"pooling": "cls"}) == pytest.approx(np.array([[1.0, 0.0], [0.0, 2.0]]))


def test_max_pooling_takes_the_largest_unmasked_value_of_each_dimension(identity):
    assert pooled(identity, {"pooling": "max"}) == pytest.approx(np.array([[3.0, 4.0], [4.0, 2.0]]))


def test_normalize_makes_each_embedding_unit_length(identity):
    vectors = pooled(identity, {"pooling": "max", "normalize": True})

    assert vectors[0] == pytest.approx([0.6, 0.8])
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0])


def test_pooling_none_on_a_sequence_output_answers_each_real_tokens_vector(identity):
    session, signature = identity
    processor = build_processor(
        manifest=manifest_with({"pooling": "none", "normalize": True}), signature=signature, file_path=version_files({})
    )

    embeddings = processor.postprocess(run_model(session, {"hidden": HIDDEN}), {"attention_mask": MASK})["embeddings"]

    assert [len(tokens) for tokens in embeddings] == [2, 3]  # the first text's padding token left out
    assert embeddings[0][1] == pytest.approx([0.6, 0.8])


def test_an_output_of_the_wrong_rank_is_refused_naming_it(identity):
    processor = build_processor(
        manifest=manifest_with({"pooling": "mean"}), signature=identity[1], file_path=version_files({})
    )

    with pytest.raises(ProcessingError) as caught:
        processor.postprocess({"last_hidden_state": np.zeros((1, 2, 3, 4), dtype=np.float32)}, {})

    assert caught.value.code == "bad_output"
    assert list(caught.value.errors) == ["outputs.last_hidden_state"]
    assert "received shape [1, 2, 3, 4]" in caught.value.errors["outputs.last_hidden_state"][0]


def test_postprocessing_naming_an_output_the_model_lacks_is_refused_at_build(identity):
    with pytest.raises(ProcessingError) as caught:
        build_processor(
            manifest=manifest_with({"pooling": "mean", "output": "pooler_output"}),
            signature=identity[1],
            file_path=version_files({}),
        )

    assert caught.value.code == "bad_manifest"
    assert caught.value.errors == {
        "postprocessing.output": ["the model has no output “pooler_output” (it has last_hidden_state)"]
    }


def test_a_model_without_a_manifest_reads_tensors_and_adds_nothing(identity):
    session, signature = identity
    processor = build_processor(manifest=None, signature=signature, file_path=version_files({}))

    assert processor.preprocess({"hidden": HIDDEN.tolist()}) is None
    assert processor.postprocess(run_model(session, {"hidden": HIDDEN}), {"hidden": HIDDEN}) is None
    assert processor.describe()["fields"] == [{"name": "hidden", "type": "float32", "shape": ["batch", "sequence", 2]}]
