"""GPU metrics come from NVML (nvidia-ml-py). This machine has no GPU: the families are then absent and nothing
fails; with a stand-in NVML module (mocked, because no GPU or NVIDIA driver exists here) the worker's exposition
and heartbeat carry each device's utilisation and memory."""

from __future__ import annotations

import sys
import types

import pytest

from apps.core import metrics
from tests.metrics_support import Exposition


def test_without_a_gpu_the_gpu_families_are_absent():
    assert metrics.gpu_devices() == []
    assert list(metrics.gpu_families()) == []
    text = metrics.render(metrics.exposition_registry(gpu=True)).decode()
    assert "gpux_gpu_" not in text


class FakeNvml(types.ModuleType):
    """pynvml's calls that the portal makes, answering for two devices (a stand-in: no GPU exists here)."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.initialised = 0
        self.shut_down = 0

    def nvmlInit(self):
        self.initialised += 1

    def nvmlShutdown(self):
        self.shut_down += 1

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H100 80GB HBM3" if handle == 0 else "NVIDIA L4"

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(used=(handle + 1) * 1024**3, total=80 * 1024**3, free=0)

    def nvmlDeviceGetUtilizationRates(self, handle):
        return types.SimpleNamespace(gpu=75 if handle == 0 else 5, memory=10)


@pytest.fixture
def fake_nvml(monkeypatch):
    module = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return module


def test_with_nvml_each_device_has_utilisation_and_memory(fake_nvml):
    scraped = Exposition(metrics.render(metrics.exposition_registry(gpu=True)).decode())
    assert scraped.value("gpux_gpu_utilization_ratio", gpu="0") == 0.75
    assert scraped.value("gpux_gpu_utilization_ratio", gpu="1") == 0.05
    assert scraped.value("gpux_gpu_memory_used_bytes", gpu="1") == 2 * 1024**3
    assert scraped.value("gpux_gpu_memory_total_bytes", gpu="0") == 80 * 1024**3
    assert scraped.value("gpux_gpu_info", gpu="0", name="NVIDIA H100 80GB HBM3") == 1
    assert scraped.value("gpux_gpu_info", gpu="1", name="NVIDIA L4") == 1
    assert fake_nvml.initialised == fake_nvml.shut_down == 1


def test_the_heartbeat_carries_the_devices(fake_nvml):
    record = metrics.WorkerMetricsServer(name="gpu@test", queues=["inference.gpu"], port=None).heartbeat_record()
    assert [device["gpu"] for device in record["gpus"]] == ["0", "1"]
    assert record["gpus"][0]["memory_used"] == 1024**3
    assert record["queues"] == ["inference.gpu"]


def test_an_nvml_that_cannot_start_means_no_gpu(monkeypatch):
    module = FakeNvml()

    def refuse():
        raise FakeNvml.NVMLError("Driver Not Loaded")

    module.nvmlInit = refuse
    monkeypatch.setitem(sys.modules, "pynvml", module)
    assert metrics.gpu_devices() == []
