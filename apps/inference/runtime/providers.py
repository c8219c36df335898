"""Which ONNX Runtime execution providers a session asks for, and which one it really got.

The preference is TensorRT > CUDA > ROCm > OpenVINO > CoreML > CPU, or what a deployment configures.
``onnxruntime-gpu`` lists TensorRT and CUDA in ``get_available_providers()`` even on a machine with no GPU and
then silently falls back to CPU (logging errors on the way), so GPU providers are only asked for when a GPU is
detected, and the provider recorded is always ``session.get_providers()[0]``, never the one requested.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import onnxruntime as ort

# (short name, ONNX Runtime provider, whether it needs a GPU device on this host)
PROVIDERS: tuple[tuple[str, str, str | None], ...] = (
    ("tensorrt", "TensorrtExecutionProvider", "nvidia"),
    ("cuda", "CUDAExecutionProvider", "nvidia"),
    ("rocm", "ROCMExecutionProvider", "amd"),
    ("openvino", "OpenVINOExecutionProvider", None),
    ("coreml", "CoreMLExecutionProvider", None),
    ("cpu", "CPUExecutionProvider", None),
)
BY_NAME = {name: (provider, device) for name, provider, device in PROVIDERS}
GPU_PROVIDERS = frozenset(provider for _, provider, device in PROVIDERS if device)
CPU = "CPUExecutionProvider"


class ProviderUnavailable(RuntimeError):
    """The provider a deployment insists on is not on this worker."""


def _visible_devices_hidden() -> bool:
    # CUDA_VISIBLE_DEVICES="" or "-1" hides every GPU from the process (a CPU worker on a GPU host).
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return value is not None and value.strip() in ("", "-1")


@cache
def gpu_devices() -> frozenset[str]:
    """The kinds of GPU this process may use: ``{"nvidia"}``, ``{"amd"}`` or nothing.

    ``GPUX_INFERENCE_GPU=off`` forces none, ``on`` trusts the provider list. Otherwise a device node must exist:
    ``/dev/nvidia0`` (or ``/dev/nvidiactl``) for NVIDIA, ``/dev/kfd`` for ROCm.
    """
    setting = os.environ.get("GPUX_INFERENCE_GPU", "auto").strip().lower()
    if setting == "off" or _visible_devices_hidden():
        return frozenset()
    if setting == "on":
        return frozenset({"nvidia", "amd"})
    found = set()
    if Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists():
        found.add("nvidia")
    if Path("/dev/kfd").exists():
        found.add("amd")
    return frozenset(found)


def has_gpu() -> bool:
    """Whether this process can run a GPU provider (a device is present and ONNX Runtime has its provider)."""
    available = set(ort.get_available_providers())
    return any(
        BY_NAME[name][0] in available for name in ("tensorrt", "cuda", "rocm") if BY_NAME[name][1] in gpu_devices()
    )


def usable_providers(available: list[str] | None = None, devices: frozenset[str] | None = None) -> list[str]:
    """The providers this process can really use, best first (CPU always last)."""
    available_set = set(ort.get_available_providers() if available is None else available)
    devices = gpu_devices() if devices is None else devices
    usable = [
        provider
        for _, provider, device in PROVIDERS
        if provider in available_set and (device is None or device in devices) and provider != CPU
    ]
    return [*usable, CPU]


def choose_providers(
    requested: str = "auto",
    *,
    available: list[str] | None = None,
    devices: frozenset[str] | None = None,
    strict: bool = False,
    gpu_mem_limit: int | None = None,
    device_id: int = 0,
) -> list[Any]:
    """The provider list to create a session with, for ``requested`` (``auto`` or a short name).

    ``auto`` takes every usable provider in the preference order. A named one is put first when usable, with
    CPU behind it; when it is not usable the list is CPU alone, or ``ProviderUnavailable`` when ``strict``.
    CUDA gets ``device_id`` and ``gpu_mem_limit`` (bytes) as options.
    """
    usable = usable_providers(available, devices)
    if requested in ("", "auto", None):
        chosen = usable
    else:
        if requested not in BY_NAME:
            raise ProviderUnavailable(f"Unknown provider “{requested}”; expected auto or one of {', '.join(BY_NAME)}.")
        provider = BY_NAME[requested][0]
        if provider in usable:
            chosen = [provider] + ([CPU] if provider != CPU else [])
        elif strict:
            raise ProviderUnavailable(
                f"The provider “{requested}” ({provider}) is not available on this worker; it has {', '.join(usable)}."
            )
        else:
            chosen = [CPU]
    options: list[Any] = []
    for provider in chosen:
        if provider == "CUDAExecutionProvider":
            cuda = {"device_id": device_id}
            if gpu_mem_limit:
                cuda["gpu_mem_limit"] = int(gpu_mem_limit)
            options.append((provider, cuda))
        elif provider == "TensorrtExecutionProvider":
            options.append((provider, {"device_id": device_id}))
        else:
            options.append(provider)
    return options


def provider_name(provider: str) -> str:
    """``CUDAExecutionProvider`` -> ``cuda``; unknown names are returned as they are."""
    for name, full, _ in PROVIDERS:
        if full == provider:
            return name
    return provider


def parse_memory(text: str | None) -> int | None:
    """A gpux.yml amount (``2GB``, ``512MB``, ``1024KB``) in bytes; None for no amount."""
    if not text:
        return None
    units = {"KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
    text = str(text).strip().upper()
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)
