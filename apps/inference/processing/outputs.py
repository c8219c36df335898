"""Outputs into a readable answer: embeddings pooled over the sequence and L2-normalized
(``{"embeddings": [[...], ...]}``), class scores mapped onto the manifest's labels
(``{"predictions": [{"label": "setosa", "scores": {"setosa": 0.97, ...}}, ...]}``).

What to do is read from the manifest's ``postprocessing`` section (the portal's extension of gpux.yml) and its
``outputs[i].labels``; a model with a tokenizer, no ``postprocessing`` section and a [batch, sequence, dim]
float output is taken for a sentence-transformers model: mean pooling, then L2 normalization.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from apps.inference.processing.errors import BAD_MANIFEST, BAD_OUTPUT, ProcessingError, refuse

FLOAT_TYPES = ("float32", "float16", "float64", "bfloat16")
INTEGER_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
SCORE_DIGITS = 6
_EPSILON = 1e-12


def pool(hidden: np.ndarray, mask: np.ndarray | None, how: str) -> np.ndarray:
    """[batch, sequence, dim] -> [batch, dim]: ``mean`` (weighted by the attention mask, so padding does not
    count), ``cls`` (the first token), ``max`` (over the unmasked tokens); ``none`` returns ``hidden`` as is."""
    if how == "none":
        return hidden
    values = hidden.astype(np.float32, copy=False)
    if mask is None or mask.shape != values.shape[:2]:
        mask = np.ones(values.shape[:2], dtype=np.float32)
    weights = mask.astype(np.float32)[:, :, None]
    if how == "cls":
        return values[:, 0, :]
    if how == "max":
        masked = np.where(weights > 0, values, -np.inf)
        pooled = masked.max(axis=1)
        return np.where(np.isfinite(pooled), pooled, 0.0).astype(np.float32)
    return (values * weights).sum(axis=1) / np.clip(weights.sum(axis=1), _EPSILON, None)


def l2_normalize(values: np.ndarray) -> np.ndarray:
    """Each row divided by its Euclidean norm (a zero row stays zero)."""
    norms = np.linalg.norm(values, axis=-1, keepdims=True)
    return values / np.clip(norms, _EPSILON, None)


def softmax(values: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum so that large logits do not overflow."""
    shifted = values.astype(np.float64) - values.max(axis=-1, keepdims=True)
    exponents = np.exp(shifted)
    return exponents / exponents.sum(axis=-1, keepdims=True)


def looks_like_probabilities(values: np.ndarray) -> bool:
    """Whether every row is already a probability distribution (values in 0..1 summing to 1)."""
    if values.size == 0 or not np.all(np.isfinite(values)):
        return False
    if values.min() < 0 or values.max() > 1:
        return False
    # np.allclose(sums, 1.0, atol=1e-3), without its generality's cost (a tenth of an online iris request's worker
    # CPU): |sum - 1| <= atol + rtol * 1.
    return bool(np.abs(values.sum(axis=-1) - 1.0).max() <= 1e-3 + 1e-5)


def _rank(entry: dict[str, Any]) -> int | None:
    shape = entry.get("shape")
    return len(shape) if isinstance(shape, list) else None


def _last_dim(entry: dict[str, Any]) -> int | None:
    shape = entry.get("shape")
    return shape[-1] if isinstance(shape, list) and shape and isinstance(shape[-1], int) else None


class OutputDecoder:
    """What a version's manifest asks of its outputs, decided once per processor; ``decode`` applies it."""

    def __init__(self, *, manifest: dict[str, Any] | None, signature: dict[str, Any], has_tokenizer: bool) -> None:
        manifest = manifest or {}
        outputs = [entry for entry in signature.get("outputs") or [] if entry.get("name")]
        by_name = {entry["name"]: entry for entry in outputs}
        post = manifest.get("postprocessing")
        settings = post or {}
        target = settings.get("output")
        if target is not None and target not in by_name:
            raise refuse(
                "postprocessing.output",
                f"the model has no output “{target}” (it has {', '.join(by_name) or 'none'})",
                code=BAD_MANIFEST,
            )
        labelled = {entry["name"]: entry["labels"] for entry in manifest.get("outputs") or [] if entry.get("labels")}
        labelled = {name: labels for name, labels in labelled.items() if name in by_name}

        self.embedding: dict[str, Any] | None = None
        pooling, normalize = settings.get("pooling"), settings.get("normalize")
        floats = [entry for entry in outputs if entry.get("elem_type") in FLOAT_TYPES]
        if pooling is not None or normalize:
            pooling = pooling or "none"
            rank = 2 if pooling == "none" else 3
            name = target or next(
                (e["name"] for e in floats if _rank(e) == rank and e["name"] not in labelled),
                floats[0]["name"] if floats else None,
            )
            if name is None:
                raise refuse(
                    "postprocessing.pooling", "the model has no float output to pool into embeddings", code=BAD_MANIFEST
                )
            self.embedding = {"output": name, "pooling": pooling, "normalize": bool(normalize)}
        elif post is None and has_tokenizer and not labelled:
            # A tokenizer and a [batch, sequence, dim] output: a sentence-transformers model, which its
            # model card would pool with the mean and normalize.
            name = next((e["name"] for e in floats if _rank(e) == 3), None)
            if name is not None:
                self.embedding = {"output": name, "pooling": "mean", "normalize": True}

        self.classes: dict[str, Any] | None = None
        if labelled or settings.get("softmax"):
            self.classes = self._classes(outputs, by_name, labelled, target, bool(settings.get("softmax")))

    @staticmethod
    def _classes(outputs, by_name, labelled, target, force_softmax) -> dict[str, Any] | None:
        label_source = target if target in labelled else next(iter(labelled), None)
        labels = labelled.get(label_source) if label_source else None

        def is_scores(entry: dict[str, Any]) -> bool:
            kind = entry.get("elem_type") or ""
            return kind in FLOAT_TYPES or (kind.startswith("seq(map(") and "float" in kind)

        candidates = []
        if target is not None and is_scores(by_name[target]):
            candidates.append(target)
        candidates += [name for name in labelled if is_scores(by_name[name])]
        candidates += [
            e["name"]
            for e in outputs
            if is_scores(e) and _rank(e) in (None, 2) and (labels is None or _last_dim(e) in (None, len(labels)))
        ]
        scores = candidates[0] if candidates else None
        index_candidates = [name for name in labelled if not is_scores(by_name[name])]
        index_candidates += [
            e["name"]
            for e in outputs
            if (e.get("elem_type") in INTEGER_TYPES or e.get("elem_type") == "string") and _rank(e) in (None, 1)
        ]
        index = index_candidates[0] if index_candidates and labels is not None else None
        if scores is None and index is None:
            return None
        if labels is not None and scores is not None:
            width = _last_dim(by_name[scores])
            if width is not None and width != len(labels):
                raise refuse(
                    f"outputs.{label_source}.labels",
                    f"{len(labels)} labels, but the output {scores} has {width} scores per item",
                    code=BAD_MANIFEST,
                )
        return {"labels": labels, "scores": scores, "index": index, "softmax": force_softmax, "source": label_source}

    @property
    def answer(self) -> str | None:
        """``embeddings``, ``classification`` (both joined by ``+``) or None: what ``decode`` adds."""
        kinds = [kind for kind, plan in (("embeddings", self.embedding), ("classification", self.classes)) if plan]
        return "+".join(kinds) or None

    def decode(self, outputs: dict[str, Any], model_inputs: dict[str, np.ndarray]) -> dict[str, Any] | None:
        """The readable answer for one run's ``outputs`` (by output name), or None when there is nothing to add;
        ProcessingError (``bad_output``) when an output does not have the shape the manifest implies."""
        answer: dict[str, Any] = {}
        if self.embedding is not None:
            answer["embeddings"] = self._embeddings(outputs, model_inputs)
        if self.classes is not None:
            answer["predictions"] = self._predictions(outputs)
        return answer or None

    def _embeddings(self, outputs: dict[str, Any], model_inputs: dict[str, np.ndarray]) -> list[Any]:
        plan = self.embedding
        name = plan["output"]
        values = _array(outputs, name)
        pooling = plan["pooling"]
        mask = model_inputs.get("attention_mask")
        mask = None if mask is None else np.asarray(mask)
        if values.ndim == 1:
            values = values[None, :]
        if values.ndim not in (2, 3):
            raise refuse(
                f"outputs.{name}",
                f"expected [batch, sequence, dim] or [batch, dim] to make embeddings, received shape "
                f"{list(values.shape)}",
                code=BAD_OUTPUT,
            )
        if values.ndim == 3 and pooling != "none":
            values = pool(values, mask, pooling)
        values = values.astype(np.float32, copy=False)
        if plan["normalize"]:
            values = l2_normalize(values)
        if values.ndim == 3:
            # pooling: none on a sequence output: one vector per token, the padding left out.
            if mask is None or mask.shape != values.shape[:2]:
                return values.astype(np.float64).tolist()
            return [item[row > 0].astype(np.float64).tolist() for item, row in zip(values, mask, strict=True)]
        return values.astype(np.float64).tolist()

    def _predictions(self, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        plan = self.classes
        labels: list[str] | None = plan["labels"]
        rows: np.ndarray | None = None
        if plan["scores"] is not None:
            rows = self._score_rows(outputs, plan["scores"], labels)
            if labels is None:
                labels = [str(index) for index in range(rows.shape[1])]
            elif rows.shape[1] != len(labels):
                raise refuse(
                    f"outputs.{plan['source']}.labels",
                    f"{len(labels)} labels, but the output {plan['scores']} has {rows.shape[1]} scores per item",
                    code=BAD_OUTPUT,
                )
            if plan["softmax"] or not looks_like_probabilities(rows):
                rows = softmax(rows)
        indices = None
        if plan["index"] is not None:
            indices = np.asarray(outputs.get(plan["index"])).reshape(-1)
        count = rows.shape[0] if rows is not None else len(indices)
        if rows is not None and indices is not None and len(indices) != count:
            indices = None  # the two outputs disagree on the batch: the scores decide
        predictions = []
        for item in range(count):
            prediction: dict[str, Any] = {}
            if indices is not None:
                prediction["label"] = _label(indices[item], labels)
            elif rows is not None:
                prediction["label"] = labels[int(np.argmax(rows[item]))]
            if rows is not None:
                prediction["scores"] = {
                    label: round(float(score), SCORE_DIGITS) for label, score in zip(labels, rows[item], strict=True)
                }
            predictions.append(prediction)
        return predictions

    @staticmethod
    def _score_rows(outputs: dict[str, Any], name: str, labels: list[str] | None) -> np.ndarray:
        value = outputs.get(name)
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            # seq(map(int64, float)): one mapping per item, keyed by class index (or name).
            keys = sorted(value[0], key=lambda key: (str(type(key)), key))
            if labels is not None and all(isinstance(key, int) for key in keys):
                keys = list(range(len(labels)))
            try:
                return np.array([[float(item[key]) for key in keys] for item in value], dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                raise refuse(
                    f"outputs.{name}", "the items' score mappings have different classes", code=BAD_OUTPUT
                ) from None
        values = _array(outputs, name).astype(np.float64)
        if values.ndim == 1:
            values = values[None, :]
        elif values.ndim > 2:
            values = values.reshape(values.shape[0], -1) if values.shape[0] else values.reshape(0, -1)
        return values


def _label(value: Any, labels: list[str] | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.integer | int) and labels is not None and 0 <= int(value) < len(labels):
        return labels[int(value)]
    return str(value.item() if isinstance(value, np.generic) else value)


def _array(outputs: dict[str, Any], name: str) -> np.ndarray:
    if name not in outputs:
        raise ProcessingError({f"outputs.{name}": ["the model did not return this output"]}, code=BAD_OUTPUT)
    try:
        return np.asarray(outputs[name])
    except (TypeError, ValueError):
        raise refuse(f"outputs.{name}", "expected a tensor", code=BAD_OUTPUT) from None
