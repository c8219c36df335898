"""The processor of one model version: readable inputs (a text, an image) into the model's arrays, and the
model's outputs into a readable answer (embeddings, labels with scores), as its gpux.yml declares.

``build_processor`` reads the normalized manifest (``ModelVersion.onnx_info["manifest"]``) and the model's
signature once; the worker keeps the processor with its session. A request whose ``inputs`` are the model's
own tensors (by input name) passes through untouched: ``preprocess`` answers None and the caller decodes and
validates them as tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from apps.inference.processing.errors import BAD_MANIFEST, MISSING_FILE, UNSUPPORTED, refuse
from apps.inference.processing.image import ACCEPT, ImageEncoder, image_input, image_input_problem
from apps.inference.processing.outputs import OutputDecoder
from apps.inference.processing.text import TOKENIZER_INPUTS, TextEncoder
from apps.inference.runtime.signature import shape_text

READABLE_INPUTS = ("text", "image")


class Processor:
    """Pre- and post-processing of one version; built by ``build_processor``."""

    def __init__(
        self,
        *,
        signature: dict[str, Any],
        text: TextEncoder | None,
        image: ImageEncoder | None,
        outputs: OutputDecoder,
        problems: dict[str, str],
    ) -> None:
        self.inputs: list[dict[str, Any]] = [entry for entry in signature.get("inputs") or [] if entry.get("name")]
        self.text = text
        self.image = image
        self.outputs = outputs
        # Why a readable input the manifest declares cannot be used (the model disagrees): said on use.
        self.problems = problems

    @property
    def kind(self) -> str:
        """``text``, ``image`` or ``tensors``: what the model reads from a person."""
        if self.text is not None:
            return "text"
        if self.image is not None:
            return "image"
        return "tensors"

    def preprocess(self, raw: dict[str, Any]) -> dict[str, np.ndarray] | None:
        """The model's input arrays for readable inputs (``{"text": ...}``, ``{"image": ...}``), or None when
        ``raw`` holds tensors by the model's input names. ProcessingError naming the field otherwise."""
        if not isinstance(raw, dict):
            raise refuse("inputs", 'expected a mapping: {"text": ...}, {"image": ...} or tensors by input name')
        names = {entry["name"] for entry in self.inputs}
        readable = [key for key in READABLE_INPUTS if key in raw and key not in names]
        if not readable:
            return None
        if len(readable) > 1:
            raise refuse("inputs", "send either text or an image, not both")
        key = readable[0]
        for other in raw:
            if other != key:
                raise refuse(
                    f"inputs.{other}",
                    f"unknown field beside inputs.{key}; send inputs.{key} alone, or the model's tensors "
                    f"({', '.join(sorted(names))}) without it",
                )
        encoder = self.text if key == "text" else self.image
        if encoder is None:
            raise refuse(f"inputs.{key}", self._refusal(key), code=UNSUPPORTED)
        return encoder.encode(raw[key])

    def _refusal(self, key: str) -> str:
        what = "read text" if key == "text" else "take images"
        if key in self.problems:
            return f"this model cannot {what}: {self.problems[key]}"
        declared = "its gpux.yml names no tokenizer" if key == "text" else "its gpux.yml has no preprocessing.resize"
        if self.text is not None:
            takes = "it reads text: send inputs.text"
        elif self.image is not None:
            takes = "it takes an image: send inputs.image (a base64-encoded PNG or JPEG file)"
        else:
            tensors = ", ".join(
                f"{entry['name']} ({entry.get('elem_type')} {shape_text(entry.get('shape'))})" for entry in self.inputs
            )
            takes = f"it takes tensors by input name: {tensors}"
        return f"this model does not {what} ({declared}); {takes}"

    def postprocess(self, outputs: dict[str, Any], model_inputs: dict[str, np.ndarray]) -> dict[str, Any] | None:
        """The readable answer for one run (``{"embeddings": ...}``, ``{"predictions": ...}``), or None when the
        manifest asks for nothing readable; ``model_inputs`` gives the attention mask for mean pooling."""
        return self.outputs.decode(outputs, model_inputs or {})

    def describe(self) -> dict[str, Any]:
        """What a "try it" form needs: ``{"kind": "text"|"image"|"tensors", "fields": [...], "answer": ...}``."""
        if self.text is not None:
            fields = [
                {
                    "name": "text",
                    "type": "textarea",
                    "label": "Text",
                    "max_tokens": self.text.max_length,
                    "help": f"One text, or a list of texts; a text past {self.text.max_length} tokens is truncated.",
                }
            ]
        elif self.image is not None:
            width, height = self.image.size
            fields = [
                {
                    "name": "image",
                    "type": "file",
                    "label": "Image",
                    "accept": ACCEPT,
                    "size": [width, height],
                    "help": f"A PNG or JPEG file; it is resized to {width} × {height}.",
                }
            ]
        else:
            fields = [
                {"name": entry["name"], "type": entry.get("elem_type"), "shape": entry.get("shape")}
                for entry in self.inputs
            ]
        return {"kind": self.kind, "fields": fields, "answer": self.outputs.answer or "tensors"}


def _version_file(name: str, file_path: Callable[[str], Path], field: str) -> Path:
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise refuse(field, f"“{name}” must be the path of a file of this version", code=BAD_MANIFEST)
    clean = relative.as_posix()
    try:
        path = file_path(clean)
    except (LookupError, OSError):
        path = None
    if path is None or not Path(path).is_file():
        raise refuse(field, f"the version has no file “{clean}”; upload it beside the model", code=MISSING_FILE)
    return Path(path)


def _manifest_input(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next((entry for entry in manifest.get("inputs") or [] if entry.get("name") == name), {})


def build_processor(
    *, manifest: dict[str, Any] | None, signature: dict[str, Any], file_path: Callable[[str], Path]
) -> Processor:
    """The processor of a version from its normalized manifest (None: tensors in, tensors out) and signature;
    ``file_path(name)`` is the local path of a version file. ProcessingError when the manifest names a file the
    version lacks (``missing_file``) or one that cannot be used, or asks for outputs the model lacks."""
    manifest = manifest or {}
    preprocessing = manifest.get("preprocessing") or {}
    inputs = [entry for entry in signature.get("inputs") or [] if entry.get("name")]
    names = [entry["name"] for entry in inputs]
    problems: dict[str, str] = {}

    text = None
    if preprocessing.get("tokenizer"):
        path = _version_file(preprocessing["tokenizer"], file_path, "preprocessing.tokenizer")
        others = [name for name in names if name not in TOKENIZER_INPUTS]
        if "input_ids" not in names:
            problems["text"] = (
                f"preprocessing.tokenizer: the model has no input_ids input for the tokens (it has {', '.join(names)})"
            )
        elif others:
            problems["text"] = (
                f"the model also takes {', '.join(others)}, which a tokenizer does not make; send tensors"
            )
        else:
            max_length = preprocessing.get("max_length") or _manifest_input(manifest, "input_ids").get("max_length")
            text = TextEncoder(tokenizer_path=path, max_length=max_length, inputs=inputs)

    image = None
    resize = preprocessing.get("resize")
    if resize:
        size = (int(resize[0]), int(resize[1]))
        entry = image_input(inputs)
        problem = image_input_problem(entry, size=size, normalize=preprocessing.get("normalize"))
        if problem is None and len(inputs) > 1:
            others = [name for name in names if name != entry["name"]]
            problem = f"the model also takes {', '.join(others)} beside the image; send tensors"
        if problem is not None:
            problems["image"] = problem
        else:
            image = ImageEncoder(size=size, normalize=preprocessing.get("normalize"), entry=entry)

    outputs = OutputDecoder(manifest=manifest, signature=signature, has_tokenizer=text is not None)
    return Processor(signature=signature, text=text, image=image, outputs=outputs, problems=problems)
