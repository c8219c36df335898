"""External data must be a plain file of the same version: absolute paths, "..", links, missing files refused.

These checks read only the protobuf and ``lstat`` the directory: nothing outside the version is opened.
"""

from __future__ import annotations

import os

from tests.marketplace.onnx_fixtures import external_data_model, only_error, validate


def test_a_model_with_its_weights_in_a_companion_file_passes(tmp_path):
    external_data_model(tmp_path, location="model.onnx.data")

    report = validate(tmp_path)

    assert report["ok"] is True, report["errors"]
    assert report["onnx_info"]["external_data_files"] == ["model.onnx.data"]


def test_weights_in_a_subfolder_of_the_version_pass(tmp_path):
    (tmp_path / "weights").mkdir()
    external_data_model(tmp_path, location="weights/w.bin")

    report = validate(tmp_path)

    assert report["ok"] is True, report["errors"]
    assert report["onnx_info"]["external_data_files"] == ["weights/w.bin"]


def test_an_absolute_location_is_refused(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-secret.bin"
    outside.write_bytes(b"\0" * 64)
    version = tmp_path / "version"
    version.mkdir()
    external_data_model(version, location=str(outside), write_data=False)

    message = only_error(validate(version))

    assert "is an absolute path" in message
    assert "initializer “w”" in message


def test_a_location_going_up_with_dot_dot_is_refused(tmp_path):
    version = tmp_path / "version"
    version.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)
    external_data_model(version, location="../secret.bin", write_data=False)

    message = only_error(validate(version))

    assert "goes up with “..”" in message
    assert "points outside the version" in message


def test_dot_dot_hidden_inside_a_path_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    external_data_model(tmp_path, location="sub/../../etc/passwd", write_data=False)

    assert "goes up with “..”" in only_error(validate(tmp_path))


def test_a_symbolic_link_in_the_version_is_refused(tmp_path):
    version = tmp_path / "version"
    version.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)
    os.symlink(tmp_path / "secret.bin", version / "weights.bin")
    external_data_model(version, location="weights.bin", write_data=False)

    report = validate(version)

    assert report["ok"] is False
    assert any("symbolic link" in message for message in report["errors"])
    assert report["checks"]["files"] == "failed"


def test_a_missing_external_file_is_refused(tmp_path):
    external_data_model(tmp_path, location="model.onnx.data", write_data=False)

    message = only_error(validate(tmp_path))

    assert (
        message == "The external data of the initializer “w” (the graph) “model.onnx.data” is missing from the version."
    )


def test_external_data_shorter_than_its_tensor_is_refused(tmp_path):
    external_data_model(tmp_path, location="model.onnx.data")
    (tmp_path / "model.onnx.data").write_bytes(b"\0" * 8)  # 16 floats need 64 bytes

    message = only_error(validate(tmp_path))

    assert "reads bytes 0 to 64 of “model.onnx.data”, which has only 8 bytes" in message


def test_a_model_file_that_is_itself_a_link_is_refused(tmp_path):
    version = tmp_path / "version"
    version.mkdir()
    external_data_model(tmp_path, location="model.onnx.data")
    os.symlink(tmp_path / "model.onnx", version / "model.onnx")

    report = validate(version)

    assert report["ok"] is False
    assert any("symbolic link" in message for message in report["errors"])
