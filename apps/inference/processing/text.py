"""Text inputs: a sentence (or a list of them) through the version's ``tokenizer.json`` (the ``tokenizers``
library) into the int64 arrays a transformer takes: ``input_ids``, ``attention_mask``, ``token_type_ids``
(only those the model's signature has), padded to the longest text of the batch and truncated at
``max_length``.

A loaded tokenizer is cached per file (path, modification time, size) and settings: the worker keeps its
processors around, and loading MiniLM's tokenizer.json takes tens of milliseconds.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from apps.inference.processing.errors import BAD_MANIFEST, INVALID, ProcessingError, refuse
from apps.inference.runtime.codecs import json_kind

TOKENIZER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_MAX_LENGTH = 512
MAX_TEXTS = 1024
# A text is cut at max_length * this many characters before tokenizing: no token of a real tokenizer spans more
# (BERT's WordPiece turns a word past 100 characters into one [UNK]), so the tokens kept are the same, and a
# megabyte of text costs no more than a page of it.
CHARS_PER_TOKEN_BOUND = 64
_DTYPES = {"int64": np.int64, "int32": np.int32}


@functools.lru_cache(maxsize=32)
def _configured_tokenizer(
    path: str, mtime_ns: int, size: int, max_length: int | None, fixed_length: int | None
) -> tuple[Tokenizer, int]:
    # mtime_ns and size are part of the key so that a file replaced at the same path is read again.
    tokenizer = Tokenizer.from_file(path)
    truncation = tokenizer.truncation or {}
    padding = tokenizer.padding or {}
    length = max_length or truncation.get("max_length") or fixed_length or DEFAULT_MAX_LENGTH
    if fixed_length:
        length = min(length, fixed_length)
    special = tokenizer.num_special_tokens_to_add(is_pair=False)
    if length <= special:
        raise refuse(
            "preprocessing.max_length",
            f"{length} tokens leave no room for text after the tokenizer's {special} special tokens",
            code=BAD_MANIFEST,
        )
    tokenizer.enable_truncation(max_length=length, strategy="longest_first", stride=0, direction="right")
    pad_token = padding.get("pad_token") or next(
        (token for token in ("[PAD]", "<pad>", "<|pad|>") if tokenizer.token_to_id(token) is not None), "[PAD]"
    )
    pad_id = padding.get("pad_id")
    if pad_id is None:
        pad_id = tokenizer.token_to_id(pad_token) or 0
    # A tokenizer.json often pads every text to a fixed length (MiniLM's to 128): pad to the longest of the
    # batch instead, unless the model itself fixes the sequence length.
    tokenizer.enable_padding(
        direction="right",
        pad_id=pad_id,
        pad_type_id=padding.get("pad_type_id", 0),
        pad_token=pad_token,
        length=fixed_length,
    )
    return tokenizer, length


def load_tokenizer(
    path: Path, *, max_length: int | None = None, fixed_length: int | None = None
) -> tuple[Tokenizer, int]:
    """The tokenizer of ``path`` set to truncate at ``max_length`` (the file's own, else ``fixed_length``, else
    512) and to pad to the longest text (or to ``fixed_length``), with the max_length it uses; cached.
    ProcessingError when the file is not a tokenizer the ``tokenizers`` library reads."""
    resolved = Path(path).resolve()
    try:
        stat = os.stat(resolved)
        return _configured_tokenizer(str(resolved), stat.st_mtime_ns, stat.st_size, max_length, fixed_length)
    except ProcessingError:
        raise
    except Exception as exc:  # the Rust library raises a plain Exception for a bad file
        raise refuse(
            "preprocessing.tokenizer",
            f"{Path(path).name} is not a tokenizer the tokenizers library reads ({exc})",
            code=BAD_MANIFEST,
        ) from exc


def _dim(shape: Any, index: int) -> int | None:
    if isinstance(shape, list) and len(shape) > index and isinstance(shape[index], int) and shape[index] > 0:
        return shape[index]
    return None


class TextEncoder:
    """Turns ``inputs.text`` into the model's arrays with the version's tokenizer."""

    def __init__(self, *, tokenizer_path: Path, max_length: int | None, inputs: list[dict[str, Any]]) -> None:
        self.inputs = [entry for entry in inputs if entry.get("name") in TOKENIZER_INPUTS]
        ids = next(entry for entry in self.inputs if entry["name"] == "input_ids")
        self.fixed_batch = _dim(ids.get("shape"), 0)
        self.fixed_length = _dim(ids.get("shape"), 1)
        self.tokenizer, self.max_length = load_tokenizer(
            tokenizer_path, max_length=max_length, fixed_length=self.fixed_length
        )

    def encode(self, value: Any) -> dict[str, np.ndarray]:
        """The model's arrays for one text or a list of texts; ProcessingError naming ``inputs.text`` (or
        ``inputs.text[i]``) for anything else. A text longer than max_length tokens is truncated."""
        texts = _texts(value)
        if self.fixed_batch is not None and len(texts) != self.fixed_batch:
            raise refuse(
                "inputs.text",
                f"this model takes {self.fixed_batch} text(s) at a time (its input_ids has a fixed batch "
                f"dimension), received {len(texts)}",
            )
        limit = self.max_length * CHARS_PER_TOKEN_BOUND
        encodings = self.tokenizer.encode_batch([text[:limit] for text in texts])
        columns = {
            "input_ids": [encoding.ids for encoding in encodings],
            "attention_mask": [encoding.attention_mask for encoding in encodings],
            "token_type_ids": [encoding.type_ids for encoding in encodings],
        }
        return {
            entry["name"]: np.array(columns[entry["name"]], dtype=_DTYPES.get(entry.get("elem_type"), np.int64))
            for entry in self.inputs
        }


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        value, single = [value], True
    elif isinstance(value, list):
        single = False
    else:
        raise refuse("inputs.text", f"expected a text or a list of texts, received {json_kind(value)}")
    if not value:
        raise refuse("inputs.text", "the list of texts is empty; send at least one")
    if len(value) > MAX_TEXTS:
        raise refuse("inputs.text", f"at most {MAX_TEXTS} texts in one request, received {len(value)}")
    errors: dict[str, list[str]] = {}
    for index, text in enumerate(value):
        field = "inputs.text" if single else f"inputs.text[{index}]"
        if not isinstance(text, str):
            errors[field] = [f"expected text, received {json_kind(text)}"]
        elif not text.strip():
            errors[field] = ["the text is empty"]
    if errors:
        raise ProcessingError(errors, code=INVALID)
    return value
