"""The limits one validation runs under (settings ``ONNX_VALIDATION_*`` and ``ONNX_MAX_*``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Resource and size limits of one validation; JSON-able so that it travels to the child process.

    ``memory_mb``: the child's whole address space (RLIMIT_AS), the Python runtime and ONNX Runtime included
    (about 350 MB of it); ``timeout_s``: wall clock of the child; ``max_file_bytes``: each file of the version;
    ``max_tensor_bytes``: each declared tensor (dims x element size, sparse tensors counted dense);
    ``max_text_length``: each name, doc string, metadata key or value, producer field.
    """

    memory_mb: int = 4096
    timeout_s: float = 120.0
    max_file_bytes: int = 4 * 1024 * MIB
    max_tensor_bytes: int = 2 * 1024 * MIB
    max_text_length: int = 65536
    max_manifest_bytes: int = 256 * 1024

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
