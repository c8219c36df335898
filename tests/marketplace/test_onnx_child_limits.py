"""Validation runs in a child process: running out of memory or time ends the child, never the caller."""

from __future__ import annotations

import os
import time

import numpy as np

from apps.marketplace.onnx.limits import Limits
from apps.marketplace.onnx.validation import _report_from
from tests.marketplace.onnx_fixtures import add_weight_model, copy_into, minilm_path, only_error, save, validate


def test_a_model_needing_more_memory_than_the_limit_fails_cleanly(tmp_path):
    save(add_weight_model(np.ones(25_000_000, dtype=np.float32)), tmp_path)  # a real 100 MB initializer

    message = only_error(validate(tmp_path, memory_mb=300))

    assert message == "validation ran out of memory (limit 300 MB): the model needs more memory to check."
    assert validate(tmp_path, memory_mb=2048)["ok"] is True  # the same model, with room: it was the limit


def test_validation_that_takes_too_long_is_stopped(tmp_path):
    copy_into(minilm_path(), tmp_path)
    started = time.monotonic()

    report = validate(tmp_path, timeout_s=0.2)

    assert only_error(report) == "validation timed out after 0.2 s: the model takes too long to check."
    assert report["checks"] == {"timeout": "failed"}
    assert time.monotonic() - started < 15


def test_the_timed_out_child_is_gone(tmp_path):
    copy_into(minilm_path(), tmp_path)
    children_before = _children()

    validate(tmp_path, timeout_s=0.3)

    assert _children() == children_before


def test_the_caller_keeps_working_after_its_child_died(tmp_path):
    save(add_weight_model(np.ones(25_000_000, dtype=np.float32)), tmp_path)
    validate(tmp_path, memory_mb=300)
    validate(tmp_path, timeout_s=0.1)

    copy_into(minilm_path(), tmp_path, "model.onnx")
    assert validate(tmp_path)["ok"] is True


def test_a_child_killed_by_a_signal_is_reported_without_a_traceback():
    limits = Limits(memory_mb=512)

    assert _report_from(-9, b"", "", limits)["errors"] == [
        "validation ran out of memory (limit 512 MB): the model needs more memory to check."
    ]
    assert _report_from(-11, b"", "", limits)["checks"] == {"memory": "failed"}
    assert _report_from(-24, b"", "", limits)["errors"] == [
        "validation timed out after 120 s: the model takes too long to check."
    ]
    assert _report_from(-15, b"", "", limits)["errors"] == [
        "validation crashed while reading the model (the checking process died of SIGTERM)."
    ]
    assert _report_from(1, b"not json", "Traceback\nValueError: boom\n", limits)["errors"] == [
        "validation stopped without a result (exit status 1): ValueError: boom"
    ]


def _children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                found.add(int(entry))
    return found
