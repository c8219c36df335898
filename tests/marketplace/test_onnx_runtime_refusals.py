"""What the checker lets through, ONNX Runtime refuses: unknown operator domains and impossible opsets."""

from __future__ import annotations

import onnx

from tests.marketplace.onnx_fixtures import custom_domain_model, make_model, only_error, relu_model, save, validate


def test_the_checker_alone_accepts_an_unknown_domain(tmp_path):
    onnx.checker.check_model(custom_domain_model(), full_check=True)  # no exception: hence the ORT session


def test_an_operator_of_an_unknown_custom_domain_is_refused_by_onnx_runtime(tmp_path):
    save(custom_domain_model(), tmp_path)

    report = validate(tmp_path)

    assert report["checks"]["checker"] == "passed"
    assert report["checks"]["onnxruntime"] == "failed"
    assert report["errors"] == [
        "ONNX Runtime cannot load the model on CPU: Fatal error: com.example.secret:Mystery(-1) is not a registered "
        "function/op"
    ]
    assert report["onnx_info"]["custom_domains"] == ["com.example.secret"]


def test_an_impossible_opset_is_refused_by_onnx_runtime(tmp_path):
    save(relu_model(opsets={"": 999}), tmp_path)

    message = only_error(validate(tmp_path))

    assert message.startswith("ONNX Runtime cannot load the model on CPU: ONNX Runtime only *guarantees* support")
    assert "Opset 999" in message
    assert "onnxruntime_src" not in message  # the C++ source location and signature are cut


def test_an_ir_version_newer_than_onnx_runtime_reads_is_refused(tmp_path):
    save(relu_model(ir_version=99), tmp_path)

    message = only_error(validate(tmp_path))

    assert message == (
        "The ONNX checker refused the model: "
        f"Your model ir_version 99 is higher than the checker's ({onnx.IR_VERSION})."
    )


def test_an_unknown_standard_operator_is_refused_by_the_checker(tmp_path):
    node = onnx.helper.make_node("NoSuchOperator", ["x"], ["y"])
    model = make_model(
        [node],
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    save(model, tmp_path)

    message = only_error(validate(tmp_path))

    assert message.startswith("The ONNX checker refused the model: No Op registered for NoSuchOperator")
