"""Image inputs: base64 PNG or JPEG bytes (Pillow) resized to the manifest's ``preprocessing.resize``
[width, height], made RGB, scaled to 0..1 and normalized (``imagenet`` mean and std, ...), stacked into the
model's float32 batch: NCHW, or NHWC when the model's input shape ends in 3.

An image is refused before it is decoded when its bytes or its declared pixels pass the limits below: a
decompression bomb (a small PNG declaring 100,000 × 100,000 pixels) costs a header read, not gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from apps.inference.processing.errors import NOT_AN_IMAGE, TOO_LARGE, refuse

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
ACCEPT = "image/png,image/jpeg,image/webp,image/gif,image/bmp"
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# Below Pillow's own Image.MAX_IMAGE_PIXELS (89 M, which only warns): 40 M pixels is a 48-megapixel photo's
# neighbourhood and 120 MB as RGB, what a worker can afford per image.
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGES = 256
# name -> (mean, std) per RGB channel, applied to values scaled to 0..1; None: 0..1 as is.
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]] | None] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # -1..1
    "none": None,
    "unit": None,
}
_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)
_FLOAT_TYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64}


class ImageEncoder:
    """Turns ``inputs.image`` into the batch of one image input of the model."""

    def __init__(self, *, size: tuple[int, int], normalize: str | None, entry: dict[str, Any]) -> None:
        self.size = size
        self.name = entry["name"]
        self.elem_type = entry.get("elem_type") or "float32"
        shape = entry.get("shape")
        self.channels_last = isinstance(shape, list) and len(shape) == 4 and shape[3] == 3 and shape[1] != 3
        self.fixed_batch = shape[0] if isinstance(shape, list) and shape and isinstance(shape[0], int) else None
        self.normalization = NORMALIZATIONS[(normalize or "none").lower()]

    def encode(self, value: Any) -> dict[str, np.ndarray]:
        """The model's input for one base64 image or a list of them; ProcessingError naming ``inputs.image``
        (``inputs.image[i]`` in a list) when one is not base64, not an image, or too large."""
        if isinstance(value, str):
            items = [("inputs.image", value)]
        elif isinstance(value, list) and value:
            if len(value) > MAX_IMAGES:
                raise refuse("inputs.image", f"at most {MAX_IMAGES} images in one request, received {len(value)}")
            items = [(f"inputs.image[{index}]", item) for index, item in enumerate(value)]
        elif isinstance(value, list):
            raise refuse("inputs.image", "the list of images is empty; send at least one")
        else:
            raise refuse("inputs.image", "expected a base64-encoded PNG or JPEG file, or a list of them")
        if self.fixed_batch is not None and len(items) != self.fixed_batch:
            raise refuse(
                "inputs.image",
                f"this model takes {self.fixed_batch} image(s) at a time (its input {self.name} has a fixed batch "
                f"dimension), received {len(items)}",
            )
        batch = np.stack([self._array(decode_image(data, field, size=self.size)) for field, data in items])
        if not self.channels_last:
            batch = batch.transpose(0, 3, 1, 2)
        return {self.name: np.ascontiguousarray(batch)}

    def _array(self, image: Image.Image) -> np.ndarray:
        if self.elem_type == "uint8":
            return np.asarray(image, dtype=np.uint8)  # a model that takes raw pixels normalizes them itself
        pixels = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        if self.normalization is not None:
            mean, std = self.normalization
            pixels = (pixels - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
        return pixels.astype(_FLOAT_TYPES.get(self.elem_type, np.float32), copy=False)


def decode_image(data: Any, field: str, *, size: tuple[int, int]) -> Image.Image:
    """A base64 (or ``data:image/...;base64,``) string decoded to an RGB image of ``size`` [width, height];
    ProcessingError naming ``field`` otherwise."""
    if not isinstance(data, str):
        raise refuse(field, "expected a base64-encoded PNG or JPEG file")
    text = _DATA_URL.sub("", data.strip(), count=1)
    if len(text) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise refuse(field, f"the image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB", code=TOO_LARGE)
    compact = "".join(text.split())
    # The URL-safe alphabet and dropped padding are what browsers' and JWT-style encoders often send.
    altchars = b"-_" if ("-" in compact or "_" in compact) else None
    compact += "=" * (-len(compact) % 4)
    try:
        raw = base64.b64decode(compact, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise refuse(field, "not valid base64; send the image file's bytes base64-encoded") from None
    if not raw:
        raise refuse(field, "the image is empty")
    try:
        image = Image.open(io.BytesIO(raw), formats=FORMATS)
    except Image.DecompressionBombError:
        raise refuse(field, f"the image has more than {MAX_IMAGE_PIXELS:,} pixels", code=TOO_LARGE) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise refuse(
            field, f"not an image file Pillow reads (expected one of {', '.join(FORMATS)})", code=NOT_AN_IMAGE
        ) from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        # Checked on the header's size, before any pixel is decoded.
        raise refuse(
            field,
            f"the image is {width} × {height} pixels; at most {MAX_IMAGE_PIXELS:,} pixels are accepted",
            code=TOO_LARGE,
        )
    try:
        if image.format == "JPEG":
            image.draft("RGB", size)  # JPEG decodes at a reduced scale directly: less memory and time
        image = ImageOps.exif_transpose(image)
        image = _rgb(image)
        return image.resize(size, Image.Resampling.BILINEAR)
    except Image.DecompressionBombError:
        raise refuse(field, f"the image has more than {MAX_IMAGE_PIXELS:,} pixels", code=TOO_LARGE) from None
    except Exception:  # a corrupt file raises what its decoder raises: OSError, ValueError, struct.error...
        raise refuse(field, "the image file is damaged or truncated and cannot be decoded", code=NOT_AN_IMAGE) from None


def _rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparent parts on white (what a viewer shows) rather than the undefined colour under them."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def image_input_problem(entry: dict[str, Any] | None, *, size: tuple[int, int], normalize: str | None) -> str | None:
    """Why ``entry`` (the model's image input) cannot take the manifest's images, or None when it can."""
    if normalize is not None and normalize.lower() not in NORMALIZATIONS:
        return (
            f"preprocessing.normalize: unknown normalization {normalize!r} for images; "
            f"expected one of {', '.join(NORMALIZATIONS)}"
        )
    if entry is None:
        return "preprocessing.resize: the model has no image input (a 4-dimensional float or uint8 tensor)"
    shape = entry.get("shape")
    if isinstance(shape, list) and len(shape) == 4:
        channels_last = shape[3] == 3 and shape[1] != 3
        height, width = (shape[1], shape[2]) if channels_last else (shape[2], shape[3])
        channels = shape[3] if channels_last else shape[1]
        if isinstance(channels, int) and channels != 3:
            return f"preprocessing.resize: the model's input {entry['name']} takes {channels} channels, not RGB"
        for declared, wanted, what in ((width, size[0], "width"), (height, size[1], "height")):
            if isinstance(declared, int) and declared != wanted:
                return (
                    f"preprocessing.resize: [{size[0]}, {size[1]}], but the model's input {entry['name']} has a "
                    f"{what} of {declared} ({shape})"
                )
    return None


def image_input(inputs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The model input that takes images: the first 4-dimensional float or uint8 tensor (or one of unknown
    rank when it is the only input)."""
    for entry in inputs:
        shape = entry.get("shape")
        if entry.get("elem_type") in (*_FLOAT_TYPES, "uint8") and isinstance(shape, list) and len(shape) == 4:
            return entry
    if len(inputs) == 1 and inputs[0].get("shape") is None and inputs[0].get("elem_type") in _FLOAT_TYPES:
        return inputs[0]
    return None
