"""An image file is resized, made RGB, scaled to 0..1 and normalized with ImageNet's mean and std into the
model's NCHW (or NHWC) float32 batch; a GlobalAveragePool model shows the values that reached it."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from apps.inference.processing import ProcessingError, build_processor
from tests.inference.onnx_models import (
    IMAGE_MANIFEST,
    cpu_session,
    image_model_path,
    run_model,
    signature_of,
    version_files,
)
from tests.inference.processing.images import encoded, image_bytes
from tests.marketplace.onnx_fixtures import make_model, save

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = image_model_path(tmp_path_factory.mktemp("image"))
    session, signature = cpu_session(path), signature_of(path)
    processor = build_processor(manifest=IMAGE_MANIFEST, signature=signature, file_path=version_files({}))
    return session, signature, processor


def channel_means(model, image: str) -> np.ndarray:
    session, _, processor = model
    inputs = processor.preprocess({"image": image})
    return run_model(session, inputs)["mean"].reshape(-1)


def test_a_red_png_reaches_the_model_resized_and_imagenet_normalized(model):
    inputs = model[2].preprocess({"image": encoded(image_bytes((255, 0, 0), size=(20, 30)))})

    assert list(inputs) == ["pixels"]
    assert inputs["pixels"].shape == (1, 3, 8, 8) and inputs["pixels"].dtype == np.float32
    expected = (np.array([1.0, 0.0, 0.0]) - MEAN) / STD
    assert run_model(model[0], inputs)["mean"].reshape(-1) == pytest.approx(expected, abs=1e-5)


def test_a_jpeg_is_read_too(model):
    means = channel_means(model, encoded(image_bytes((0, 0, 255), size=(64, 48), image_format="JPEG")))

    assert means == pytest.approx((np.array([0.0, 0.0, 1.0]) - MEAN) / STD, abs=0.05)


def test_a_data_url_is_read_as_its_base64_content(model):
    means = channel_means(model, "data:image/png;base64," + encoded(image_bytes((0, 255, 0))))

    assert means == pytest.approx((np.array([0.0, 1.0, 0.0]) - MEAN) / STD, abs=1e-5)


def test_a_greyscale_image_becomes_three_equal_channels(model):
    means = channel_means(model, encoded(image_bytes(128, mode="L")))

    assert means == pytest.approx((128 / 255 - MEAN) / STD, abs=1e-5)


def test_transparent_pixels_count_as_white(model):
    means = channel_means(model, encoded(image_bytes((0, 0, 0, 0), mode="RGBA")))

    assert means == pytest.approx((1.0 - MEAN) / STD, abs=1e-5)


def test_a_model_with_a_batch_of_one_refuses_two_images(model):
    image = encoded(image_bytes())

    with pytest.raises(ProcessingError) as caught:
        model[2].preprocess({"image": [image, image]})

    assert list(caught.value.errors) == ["inputs.image"]
    assert "takes 1 image(s) at a time" in caught.value.errors["inputs.image"][0]


def test_a_model_whose_shape_ends_in_three_channels_gets_nhwc(tmp_path):
    transpose = helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2], name="transpose")
    average = helper.make_node("GlobalAveragePool", ["nchw"], ["mean"], name="average")
    path = tmp_path / save(
        make_model(
            [transpose, average],
            [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 8, 8, 3])],
            [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["N", 3, 1, 1])],
        ),
        tmp_path,
    )
    manifest = {**IMAGE_MANIFEST, "inputs": [{"name": "pixels", "type": "float32", "shape": ["N", 8, 8, 3]}]}
    processor = build_processor(manifest=manifest, signature=signature_of(path), file_path=version_files({}))

    inputs = processor.preprocess({"image": [encoded(image_bytes((255, 0, 0))), encoded(image_bytes((0, 0, 255)))]})

    assert inputs["pixels"].shape == (2, 8, 8, 3)
    means = run_model(cpu_session(path), inputs)["mean"].reshape(2, 3)
    assert means[0] == pytest.approx((np.array([1.0, 0.0, 0.0]) - MEAN) / STD, abs=1e-5)
    assert means[1] == pytest.approx((np.array([0.0, 0.0, 1.0]) - MEAN) / STD, abs=1e-5)


def test_the_try_it_form_of_an_image_model_is_one_file(model):
    description = model[2].describe()

    assert description["kind"] == "image"
    assert [(field["name"], field["type"]) for field in description["fields"]] == [("image", "file")]
    assert description["fields"][0]["size"] == [8, 8]
    assert "image/png" in description["fields"][0]["accept"]


def test_a_resize_the_model_cannot_take_is_said_when_an_image_is_sent(model):
    manifest = {**IMAGE_MANIFEST, "preprocessing": {"resize": [16, 16], "normalize": "imagenet"}}
    processor = build_processor(manifest=manifest, signature=model[1], file_path=version_files({}))

    with pytest.raises(ProcessingError) as caught:
        processor.preprocess({"image": encoded(image_bytes())})

    assert processor.describe()["kind"] == "tensors"
    assert caught.value.code == "unsupported_input"
    assert (
        "preprocessing.resize: [16, 16], but the model's input pixels has a width of 8"
        in (caught.value.errors["inputs.image"][0])
    )


def test_an_unknown_normalization_is_said_when_an_image_is_sent(model):
    manifest = {**IMAGE_MANIFEST, "preprocessing": {"resize": [8, 8], "normalize": "standard"}}
    processor = build_processor(manifest=manifest, signature=model[1], file_path=version_files({}))

    with pytest.raises(ProcessingError) as caught:
        processor.preprocess({"image": encoded(image_bytes())})

    assert "unknown normalization 'standard'" in caught.value.errors["inputs.image"][0]
