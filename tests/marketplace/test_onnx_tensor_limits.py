"""Declared tensor sizes and file sizes are checked from the protobuf alone: a terabyte is refused unallocated."""

from __future__ import annotations

import resource

import numpy as np

from apps.marketplace.onnx.inspection import Report, check_tensor_sizes
from apps.marketplace.onnx.limits import Limits
from tests.marketplace.onnx_fixtures import (
    add_weight_model,
    constant_node_model,
    declared_huge_tensor_model,
    huge_sparse_model,
    only_error,
    save,
    validate,
)


def test_an_initializer_declaring_four_terabytes_is_refused_from_a_tiny_file(tmp_path):
    save(declared_huge_tensor_model(), tmp_path)
    assert (tmp_path / "model.onnx").stat().st_size < 1024

    # A child limited to 400 MB of address space could never hold the tensor: the check computes, never allocates.
    message = only_error(validate(tmp_path, memory_mb=400))

    assert message == (
        "The initializer “w” (the graph) declares 4.0 TiB (its shape [1048576, 1048576]); "
        "the limit for one tensor is 2.0 GiB."
    )


def test_a_sparse_tensor_is_counted_at_its_dense_size(tmp_path):
    save(huge_sparse_model(), tmp_path)

    message = only_error(validate(tmp_path, memory_mb=400))

    assert "sparse initializer “s”" in message
    assert "declares 64.0 TiB (its dense shape [4194304, 4194304])" in message


def test_a_constant_node_declaring_a_huge_value_is_refused(tmp_path):
    save(constant_node_model([1 << 16, 1 << 16]), tmp_path)

    message = only_error(validate(tmp_path, max_tensor_bytes=1 << 30))

    assert "a Constant node" in message or "node “constant”" in message
    assert "declares 16.0 GiB" in message


def test_the_tensor_limit_is_configurable(tmp_path):
    save(add_weight_model(np.zeros(1024, dtype=np.float32)), tmp_path)  # 4 KiB

    assert validate(tmp_path, max_tensor_bytes=4096)["ok"] is True
    message = only_error(validate(tmp_path, max_tensor_bytes=4095))
    assert message == (
        "The initializer “w” (the graph) declares 4,096 bytes (its shape [1024]); "
        "the limit for one tensor is 4,095 bytes."
    )


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    save(add_weight_model(np.zeros(1024, dtype=np.float32)), tmp_path)
    size = (tmp_path / "model.onnx").stat().st_size

    report = validate(tmp_path, max_file_bytes=size - 1)

    assert report["errors"] == [f"“model.onnx” is {size:,} bytes; the limit for one file is {size - 1:,} bytes."]
    assert report["checks"] == {"files": "failed"}


def test_the_size_check_computes_declared_sizes_without_allocating_them():
    # Run in this process on purpose: a petabyte tensor checked here would end the test run if it were allocated.
    model = declared_huge_tensor_model(dims=(1 << 24, 1 << 24))  # 1 PiB declared
    sparse = huge_sparse_model()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = Report()

    total = check_tensor_sizes(model, Limits(), report) + check_tensor_sizes(sparse, Limits(), report)

    assert total == (1 << 50) + (1 << 46) + 8  # 1 PiB, the sparse values at 64 TiB dense, one int64 index
    assert len(report.errors) == 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB
