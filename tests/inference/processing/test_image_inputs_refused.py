"""Each bad image answers a ProcessingError naming ``inputs.image``: not base64, not an image, damaged, too
large (refused from its header, before any pixel is decoded), or sent to a model that takes no images."""

from __future__ import annotations

import pytest

from apps.inference.processing import ProcessingError, build_processor
from apps.inference.processing.image import MAX_IMAGE_PIXELS
from tests.inference.onnx_models import (
    IMAGE_MANIFEST,
    IRIS_MANIFEST,
    average_colour_model,
    image_model_path,
    signature_of,
    sklearn_iris_path,
    version_files,
)
from tests.inference.processing.images import encoded, image_bytes, png_declaring
from tests.marketplace.onnx_fixtures import save


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    path = image_model_path(tmp_path_factory.mktemp("image"))
    return build_processor(manifest=IMAGE_MANIFEST, signature=signature_of(path), file_path=version_files({}))


def refusal(processor, raw) -> ProcessingError:
    with pytest.raises(ProcessingError) as caught:
        processor.preprocess(raw)
    return caught.value


def test_text_that_is_not_base64_is_refused(processor):
    error = refusal(processor, {"image": "this is not base64!"})

    assert error.errors == {"inputs.image": ["not valid base64; send the image file's bytes base64-encoded"]}
    assert error.code == "invalid"


def test_a_file_that_is_not_an_image_is_refused(processor):
    error = refusal(processor, {"image": encoded(b"name,species\n5.1,setosa\n")})

    assert error.code == "not_an_image"
    assert error.errors["inputs.image"][0].startswith("not an image file Pillow reads")


def test_a_truncated_png_is_refused_as_damaged(processor):
    whole = image_bytes(size=(64, 64))

    error = refusal(processor, {"image": encoded(whole[: len(whole) // 2])})

    assert error.code == "not_an_image"
    assert list(error.errors) == ["inputs.image"]


def test_an_image_declaring_more_pixels_than_the_limit_is_refused_before_decoding(processor):
    side = int(MAX_IMAGE_PIXELS**0.5) + 100

    error = refusal(processor, {"image": encoded(png_declaring(side, side))})

    assert error.code == "too_large"
    assert error.errors == {
        "inputs.image": [f"the image is {side} × {side} pixels; at most {MAX_IMAGE_PIXELS:,} pixels are accepted"]
    }


def test_a_decompression_bomb_past_pillows_own_limit_is_refused_as_too_large(processor):
    error = refusal(processor, {"image": encoded(png_declaring(100_000, 100_000))})

    assert error.code == "too_large"
    assert list(error.errors) == ["inputs.image"]


def test_a_bad_image_in_a_list_is_named_by_its_index(tmp_path):
    path = tmp_path / save(average_colour_model(shape=("N", 3, 8, 8)), tmp_path)
    processor = build_processor(manifest=IMAGE_MANIFEST, signature=signature_of(path), file_path=version_files({}))

    error = refusal(processor, {"image": [encoded(image_bytes()), "@@@"]})

    assert list(error.errors) == ["inputs.image[1]"]


def test_an_empty_list_and_a_number_are_refused(processor):
    assert list(refusal(processor, {"image": []}).errors) == ["inputs.image"]
    assert refusal(processor, {"image": 7}).errors == {
        "inputs.image": ["expected a base64-encoded PNG or JPEG file, or a list of them"]
    }


def test_an_image_for_a_model_without_resize_says_what_the_model_takes(tmp_path):
    path = sklearn_iris_path(tmp_path)
    processor = build_processor(manifest=IRIS_MANIFEST, signature=signature_of(path), file_path=version_files({}))

    error = refusal(processor, {"image": encoded(image_bytes())})

    assert error.code == "unsupported_input"
    assert error.errors == {
        "inputs.image": [
            "this model does not take images (its gpux.yml has no preprocessing.resize); "
            "it takes tensors by input name: float_input (float32 [?, 4])"
        ]
    }
