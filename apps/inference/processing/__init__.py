"""Pre- and post-processing of inference requests, as a version's gpux.yml declares: texts through its
tokenizer.json, images resized and normalized, outputs pooled into embeddings or mapped onto class labels."""

from __future__ import annotations

from apps.inference.processing.errors import ProcessingError
from apps.inference.processing.processor import Processor, build_processor

__all__ = ["ProcessingError", "Processor", "build_processor"]
