"""Guess a model's task from its signature and tags: a small, ordered table of rules.

Task names follow the Hugging Face pipeline tags, so that models synced from a registry and models uploaded
here use the same words. The first rule that matches wins:

=====================  ==========================================================================================
task                   rule
=====================  ==========================================================================================
(a tag)                a tag that is a task name (or an alias: ``embeddings``, ``vad``, ``ocr``...) wins
question-answering     integer ``input_ids`` in; ``start_logits`` and ``end_logits`` out
token-classification   integer ``input_ids`` in; ``logits`` of rank 3 out
text-classification    integer ``input_ids`` in; ``logits`` (or ``scores``/``probabilities``) of rank 2 out
feature-extraction     integer ``input_ids`` in; ``last_hidden_state``, ``sentence_embedding``, ``embeddings``
                       or ``pooler_output`` out (sentence embeddings)
object-detection       image in (float, rank 4, 3 channels, NCHW or NHWC); ``boxes``/``bboxes``/``dets``/
                       ``detection_*`` out, or ``boxes`` and ``scores``
image-classification   image in; one rank-2 float output ``[N, classes]``
image-segmentation     image in; a rank-4 output
voice-activity-detection float audio ``[N, samples]`` and a sample-rate input (``sr``) in; a ``[N, 1]`` output
audio-classification   float audio ``[N, samples]`` (named ``audio``/``waveform``/``input_values``/``speech``/``pcm``,
                       or with a sample rate) in; rank-2 output
automatic-speech-recognition  the same audio in; rank-3 ``logits`` out
tabular-classification one float input ``[N, F]`` (F fixed); a ``label`` output and probabilities
tabular-regression     one float input ``[N, F]``; one float output ``[N]`` or ``[N, 1]``
=====================  ==========================================================================================

Nothing matches: ``None`` (the task stays what the publisher says).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TASKS = (
    "feature-extraction",
    "sentence-similarity",
    "text-classification",
    "token-classification",
    "question-answering",
    "text-generation",
    "image-classification",
    "object-detection",
    "image-segmentation",
    "image-to-text",
    "audio-classification",
    "automatic-speech-recognition",
    "voice-activity-detection",
    "tabular-classification",
    "tabular-regression",
)
TAG_ALIASES = {
    "embeddings": "feature-extraction",
    "embedding": "feature-extraction",
    "sentence-embeddings": "feature-extraction",
    "sentence-transformers": "feature-extraction",
    "vad": "voice-activity-detection",
    "asr": "automatic-speech-recognition",
    "speech-recognition": "automatic-speech-recognition",
    "ocr": "image-to-text",
    "detection": "object-detection",
    "classification": None,  # too vague to decide between text, image and tabular
}

INTEGER_TYPES = {"int64", "int32"}
FLOAT_TYPES = {"float32", "float16", "float64", "bfloat16"}
EMBEDDING_OUTPUTS = {"last_hidden_state", "sentence_embedding", "sentence_embeddings", "embeddings", "pooler_output"}
DETECTION_OUTPUTS = {"boxes", "bboxes", "dets", "detection_boxes", "detections", "pred_boxes"}
AUDIO_INPUTS = {"audio", "waveform", "input_values", "speech", "pcm", "wav", "input_features"}
SAMPLE_RATE_INPUTS = {"sr", "sample_rate", "sampling_rate"}
TEXT_INPUTS = {"input_ids"}


def _rank(entry: dict[str, Any]) -> int | None:
    shape = entry.get("shape")
    return len(shape) if isinstance(shape, list) else None


def _lower_names(entries: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(entry.get("name", "")).lower(): entry for entry in entries}


def task_from_tags(tags: Iterable[str] | None) -> str | None:
    """The first tag that names a task (or an alias of one)."""
    for tag in tags or ():
        word = str(tag).strip().lower().replace("_", "-").replace(" ", "-")
        if word in TASKS:
            return word
        if TAG_ALIASES.get(word):
            return TAG_ALIASES[word]
    return None


def _is_image(entry: dict[str, Any]) -> bool:
    shape = entry.get("shape")
    if entry.get("elem_type") not in FLOAT_TYPES or not isinstance(shape, list) or len(shape) != 4:
        return False
    return shape[1] == 3 or shape[3] == 3 or (shape[1] in (1, 4) and isinstance(shape[2], int))


def _text_task(inputs: dict, outputs: dict) -> str | None:
    if not any(name in TEXT_INPUTS and entry.get("elem_type") in INTEGER_TYPES for name, entry in inputs.items()):
        return None
    if "start_logits" in outputs and "end_logits" in outputs:
        return "question-answering"
    logits = outputs.get("logits") or outputs.get("scores") or outputs.get("probabilities")
    if logits is not None and _rank(logits) == 3:
        return "token-classification"
    if logits is not None and _rank(logits) == 2:
        return "text-classification"
    if EMBEDDING_OUTPUTS & set(outputs):
        return "feature-extraction"
    return None


def _image_task(inputs: dict, outputs: dict) -> str | None:
    if not any(_is_image(entry) for entry in inputs.values()):
        return None
    names = set(outputs)
    if (
        names & DETECTION_OUTPUTS
        or any(name.startswith("detection_") for name in names)
        or {"scores", "labels"} <= names
    ):
        return "object-detection"
    ranks = [_rank(entry) for entry in outputs.values()]
    if len(outputs) == 1 and ranks[0] == 2:
        return "image-classification"
    if any(rank == 4 for rank in ranks):
        return "image-segmentation"
    return None


def _audio_task(inputs: dict, outputs: dict) -> str | None:
    waveforms = [
        entry
        for name, entry in inputs.items()
        if entry.get("elem_type") in FLOAT_TYPES and _rank(entry) == 2 and (name in AUDIO_INPUTS or name == "input")
    ]
    has_rate = any(name in SAMPLE_RATE_INPUTS for name in inputs)
    named_audio = any(name in AUDIO_INPUTS for name in inputs)
    if not waveforms or not (has_rate or named_audio):
        return None
    shapes = [entry.get("shape") for entry in outputs.values()]
    if has_rate and any(isinstance(shape, list) and len(shape) == 2 and shape[1] == 1 for shape in shapes):
        return "voice-activity-detection"
    if "logits" in outputs and _rank(outputs["logits"]) == 3:
        return "automatic-speech-recognition"
    if any(isinstance(shape, list) and len(shape) == 2 for shape in shapes):
        return "audio-classification"
    return None


def _tabular_task(inputs: dict, outputs: dict) -> str | None:
    if len(inputs) != 1:
        return None
    (entry,) = inputs.values()
    shape = entry.get("shape")
    if entry.get("elem_type") not in FLOAT_TYPES or not isinstance(shape, list) or len(shape) != 2:
        return None
    if not isinstance(shape[1], int):
        return None
    names = set(outputs)
    has_probabilities = any("prob" in name or name.startswith("seq(") for name in names) or any(
        str(out.get("elem_type", "")).startswith("seq(") for out in outputs.values()
    )
    if any("label" in name for name in names) and (has_probabilities or len(outputs) >= 2):
        return "tabular-classification"
    if len(outputs) == 1:
        (out,) = outputs.values()
        out_shape = out.get("shape")
        if (
            out.get("elem_type") in FLOAT_TYPES
            and isinstance(out_shape, list)
            and (len(out_shape) == 1 or (len(out_shape) == 2 and out_shape[1] == 1))
        ):
            return "tabular-regression"
    return None


RULES = (_text_task, _image_task, _audio_task, _tabular_task)


def detect_task(signature: dict[str, Any] | None, tags: Iterable[str] | None = None) -> str | None:
    """The task of a model with ``signature`` (see ``signature.extract_signature``) and ``tags``, or None."""
    from_tags = task_from_tags(tags)
    if from_tags:
        return from_tags
    if not signature:
        return None
    inputs = _lower_names(signature.get("inputs") or [])
    outputs = _lower_names(signature.get("outputs") or [])
    for rule in RULES:
        task = rule(inputs, outputs)
        if task:
            return task
    return None
