"""The floor of the inference design for benchmarks/inference.py: the same model run inside a bare Celery task
(no Job row, no validation, no portal), on the same kind of worker (prefork, one process, Redis broker)."""

from __future__ import annotations

import os

import numpy as np
from celery import shared_task

_sessions: dict[str, object] = {}


def _session(path: str):
    if path not in _sessions:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("GPUX_INFERENCE_THREADS", "2"))
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        _sessions[path] = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    return _sessions[path]


@shared_task(name="bench.run_model", acks_late=True)
def run_model(path: str, inputs: dict) -> dict:
    """Run the embedding model on JSON inputs; the pooled, normalized embeddings as JSON lists."""
    session = _session(path)
    feeds = {name: np.asarray(value, dtype=np.int64 if "ids" in name or "mask" in name else np.float32)
             for name, value in inputs.items()}  # fmt: skip
    hidden = session.run(None, feeds)[0]
    # What a caller of an embedding model wants back, as the portal's readable answer gives it: the mean over
    # the tokens under the attention mask, L2-normalized.
    mask = feeds["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return {"embeddings": pooled.tolist()}
