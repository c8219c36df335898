"""Checking an uploaded model file before it is stored: bad files answer with reasons, companions may follow."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from apps.marketplace.onnx.limits import Limits
from apps.marketplace.onnx.validation import precheck_model_file
from apps.marketplace.validation import check_uploaded_model
from tests.marketplace.onnx_fixtures import (
    add_weight_model,
    copy_into,
    custom_domain_model,
    declared_huge_tensor_model,
    external_data_model,
    minilm_path,
    random_bytes,
    relu_model,
    save,
)


def test_a_real_model_passes_the_upload_checks(tmp_path):
    report = precheck_model_file(tmp_path / copy_into(minilm_path(), tmp_path))

    assert report["ok"] is True, report["errors"]
    assert report["checks"] == {
        "files": "passed",
        "parse": "passed",
        "text": "passed",
        "tensor_sizes": "passed",
        "external_data": "passed",
    }


def test_a_model_whose_weights_have_not_arrived_yet_passes(tmp_path):
    external_data_model(tmp_path, location="model.onnx.data", write_data=False)

    assert precheck_model_file(tmp_path / "model.onnx")["ok"] is True


def test_the_upload_checks_leave_operator_support_to_the_job(tmp_path):
    save(custom_domain_model(), tmp_path)  # ONNX Runtime refuses it, in the validation job

    assert precheck_model_file(tmp_path / "model.onnx")["ok"] is True


def test_other_files_in_the_spool_folder_are_not_looked_at(tmp_path):
    save(relu_model(), tmp_path)
    (tmp_path / "someone-elses-upload.part").write_bytes(random_bytes(1_000_000))

    assert precheck_model_file(tmp_path / "model.onnx", Limits(max_file_bytes=10_000))["ok"] is True


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda d: (d / "model.onnx").write_bytes(random_bytes()), "The file is not an ONNX model"),
        (
            lambda d: (d / "model.onnx").write_bytes(minilm_path().read_bytes()[:100_000]),
            "The file is not an ONNX model",
        ),
        (lambda d: (d / "model.onnx").write_bytes(b"\x08\x03"), "it has no graph"),
        (lambda d: save(declared_huge_tensor_model(), d), "declares 4.0 TiB"),
        (lambda d: external_data_model(d, location="../../etc/passwd", write_data=False), "goes up with “..”"),
        (lambda d: external_data_model(d, location="/etc/passwd", write_data=False), "is an absolute path"),
        (lambda d: save(relu_model(doc_string="\x00"), d), "contains a NUL character"),
    ],
    ids=["random-bytes", "truncated", "not-a-model", "terabyte-tensor", "dot-dot", "absolute", "nul"],
)
def test_bad_model_files_are_refused_before_they_are_stored(tmp_path, build, reason):
    build(tmp_path)

    with pytest.raises(ValidationError) as refused:
        check_uploaded_model(local_path=tmp_path / "model.onnx")

    assert {error.code for error in refused.value.error_dict["file"]} == {"invalid_onnx"}
    messages = refused.value.message_dict["file"]
    assert any(reason in message for message in messages), messages


def test_a_model_file_over_the_size_limit_is_refused_unread(tmp_path, settings):
    save(add_weight_model(np.zeros(1024, dtype=np.float32)), tmp_path)
    settings.ONNX_MAX_FILE_BYTES = 1000

    with pytest.raises(ValidationError) as refused:
        check_uploaded_model(local_path=tmp_path / "model.onnx")

    size = (tmp_path / "model.onnx").stat().st_size
    assert refused.value.message_dict == {
        "file": [f"The model file is {size / 1024:.1f} KiB; the limit for one file is 1000 bytes."]
    }
