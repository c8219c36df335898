"""``ProcessingError``: a request or manifest that the pre- and post-processing cannot use, naming the field."""

from __future__ import annotations

# Stable codes, as the API's error answers carry them.
INVALID = "invalid"  # a readable input of the wrong form (empty list, not text, not base64)
UNSUPPORTED = "unsupported_input"  # a readable input this model does not take (text for an image model)
TOO_LARGE = "too_large"  # an image past the size or pixel limits
NOT_AN_IMAGE = "not_an_image"  # bytes Pillow cannot read as an image
MISSING_FILE = "missing_file"  # the manifest names a file the version lacks
BAD_MANIFEST = "bad_manifest"  # the manifest disagrees with the model or names something unknown
BAD_OUTPUT = "bad_output"  # the model's outputs do not fit the postprocessing the manifest asks for


class ProcessingError(ValueError):
    """Pre- or post-processing refused: ``errors`` maps each field (``inputs.text``) to its messages, DRF's
    shape; ``code`` is one of this module's codes."""

    def __init__(self, errors: dict[str, list[str]], *, code: str = INVALID) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, messages in errors.items() for message in messages))
        self.errors = errors
        self.code = code


def refuse(field: str, message: str, *, code: str = INVALID) -> ProcessingError:
    """One ``field: message`` error, to raise."""
    return ProcessingError({field: [message]}, code=code)
