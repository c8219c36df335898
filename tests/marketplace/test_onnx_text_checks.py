"""Names, doc strings and metadata must be valid UTF-8, without NUL, and of bounded length."""

from __future__ import annotations

from onnx import helper

from tests.marketplace.onnx_fixtures import only_error, relu_model, save, validate, with_bytes_replaced


def test_a_node_name_that_is_not_utf8_is_refused(tmp_path):
    model = relu_model(node_name="NODE_X")
    (tmp_path / "model.onnx").write_bytes(with_bytes_replaced(model, "NODE_X", b"NODE\xff\xfe"))

    message = only_error(validate(tmp_path))

    assert message.startswith("The name of a Relu node in the graph is not valid UTF-8 text")


def test_a_doc_string_with_a_nul_character_is_refused(tmp_path):
    save(relu_model(doc_string="fine\x00hidden"), tmp_path)

    message = only_error(validate(tmp_path))

    assert message == "The doc string of node “relu” (Relu) in the graph contains a NUL character (“fine\\x00hidden”)."


def test_metadata_values_with_nul_or_bad_utf8_are_refused(tmp_path):
    model = relu_model()
    helper.set_model_props(model, {"author": "a\x00b", "license": "LICENSE_X"})
    (tmp_path / "model.onnx").write_bytes(
        with_bytes_replaced(model, "LICENSE_X", b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xfa\xfb")
    )

    report = validate(tmp_path)

    assert report["ok"] is False
    assert report["checks"]["text"] == "failed"
    assert "The metadata value of “author” contains a NUL character (“a\\x00b”)." in report["errors"]
    assert any(message.startswith("The metadata value of “license” is not valid UTF-8") for message in report["errors"])


def test_a_producer_name_over_the_length_limit_is_refused(tmp_path):
    save(relu_model(producer_name="p" * 101), tmp_path)

    message = only_error(validate(tmp_path, max_text_length=100))

    assert message == "The producer name is 101 characters long; the limit is 100."


def test_text_at_the_length_limit_passes(tmp_path):
    save(relu_model(producer_name="p" * 100, doc_string="d" * 100), tmp_path)

    assert validate(tmp_path, max_text_length=100)["ok"] is True


def test_nothing_native_runs_on_a_model_with_bad_text(tmp_path):
    save(relu_model(doc_string="\x00"), tmp_path)

    report = validate(tmp_path)

    assert "checker" not in report["checks"] and "onnxruntime" not in report["checks"]
    assert report["signature"] is None
