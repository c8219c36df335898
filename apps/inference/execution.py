"""What an inference worker does with a version: bring its files to local disk, load a session (cached per
process), pre-process readable inputs, validate, run, post-process.

Every way of running a model goes through ``run_version`` (single predictions, merged batches, batch jobs,
pipeline steps, the performance card), so providers, limits and the readable answer behave the same everywhere.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from apps.inference.runtime.providers import choose_providers, parse_memory
from apps.inference.runtime.sessions import (
    SessionCache,
    load_session,
    resident_bytes,
    run_session,
    session_options,
)
from apps.marketplace.models import ModelVersion

logger = logging.getLogger(__name__)

_cache: SessionCache | None = None
_processors: dict[Any, Any] = {}


def session_cache() -> SessionCache:
    """This process's session cache (``INFERENCE_SESSION_CACHE_MB``)."""
    global _cache
    if _cache is None:
        _cache = SessionCache(int(settings.INFERENCE_SESSION_CACHE_MB) * 1024 * 1024)
    return _cache


_frozen_files: dict[str, tuple[str, str | None]] = {}


def files_key(version: ModelVersion) -> str:
    """A short digest of the version's (path, sha256) pairs: its folder changes when its files do."""
    cached = _frozen_files.get(str(version.uuid))
    if cached is not None and version.is_frozen:
        return cached[0]
    digest = hashlib.sha256()
    for path, sha in version.files.order_by("path").values_list("path", "blob__sha256"):
        digest.update(f"{path}\0{sha}\n".encode())
    return digest.hexdigest()[:16]


def version_directory(version: ModelVersion) -> Path:
    """The local folder with the version's files, copied from storage the first time (atomically: a folder
    half-copied by a killed worker is never used)."""
    from apps.marketplace.validation import materialize_files

    root = Path(settings.INFERENCE_CACHE_DIR) / "versions"
    target = root / f"{version.uuid}-{files_key(version)}"
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{uuid.uuid4().hex}"
    try:
        materialize_files(version, staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # another process won the race: theirs is as good as ours
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def manifest_of(version: ModelVersion) -> dict[str, Any]:
    return (version.onnx_info or {}).get("manifest") or {}


@dataclass
class LoadedVersion:
    """A version ready to run in this process."""

    version: ModelVersion
    directory: Path
    session: Any
    provider: str
    load_ms: float
    processor: Any
    key: Any = None  # the session cache's key

    @property
    def signature(self) -> dict[str, Any]:
        return self.version.signature or {}


# What ``load_version`` works out for a published (frozen) version before it asks the session cache, by the version
# and the provider asked for: the providers, the cache key, the local folder, the model file and its size. A published
# version's files never change, so this is worked out once per process: in a profile of a serving loop answering iris
# requests one at a time, ``load_version`` was 13 % of its samples, most of it these steps (the providers, a check
# of the folder, a stat of the model file) done again for every request.
_frozen_loads: dict[tuple[str, str], tuple[list[Any], tuple, Path, Path, int]] = {}


def load_version(version: ModelVersion, *, provider: str = "auto") -> LoadedVersion:
    """The version's session (from this process's cache, or loaded now) and its pre/post-processor."""
    from apps.inference.processing import build_processor

    manifest = manifest_of(version)
    known = _frozen_loads.get((str(version.uuid), provider)) if version.is_frozen else None
    if known is None:
        known = _where_to_load(version, provider, manifest)
        if version.is_frozen:
            if len(_frozen_loads) > 10_000:
                _frozen_loads.clear()
            _frozen_loads[str(version.uuid), provider] = known
    providers, key, directory, model_path, size = known

    def loader():
        version_directory(version)  # the folder again, should it have been removed since the session was dropped
        return load_session(model_path, providers=providers, options=session_options()), {}

    entry = session_cache().get(key, loader, size_hint=size)
    processor = _processors.get(key)
    if processor is None:
        processor = build_processor(
            manifest=manifest, signature=version.signature or {}, file_path=lambda name: _version_file(directory, name)
        )
        _processors[key] = processor
    return LoadedVersion(
        version, directory, entry.session, entry.provider, entry.load_ms if entry.last_used else 0.0, processor, key
    )


def _where_to_load(
    version: ModelVersion, provider: str, manifest: dict[str, Any]
) -> tuple[list[Any], tuple, Path, Path, int]:
    """The providers, session cache key, local folder (copied from storage now if need be), model file and its size
    of ``version`` for ``provider``."""
    from apps.marketplace.validation import model_file_of

    gpu = (manifest.get("runtime") or {}).get("gpu") or {}
    providers = choose_providers(provider, gpu_mem_limit=parse_memory(gpu.get("memory")))
    key = (str(version.uuid), files_key(version), tuple(str(p) for p in providers))
    directory = version_directory(version)
    cached = _frozen_files.get(str(version.uuid)) if version.is_frozen else None
    if cached is not None:
        main_path = cached[1]
    else:
        main = model_file_of(version)
        main_path = main.path if main is not None else None
        if version.is_frozen:  # a published version's files never change: no need to ask again
            _frozen_files[str(version.uuid)] = (key[1], main_path)
    if main_path is None:
        raise FileNotFoundError(f"Version “{version.label}” of {version.model} has no ONNX model file.")
    model_path = directory / main_path
    return providers, key, directory, model_path, model_path.stat().st_size


def _version_file(directory: Path, name: str) -> Path:
    path = (directory / name.removeprefix("./")).resolve()
    if directory.resolve() not in path.parents or not path.is_file():
        raise FileNotFoundError(name)
    return path


def prepare_inputs(
    loaded: LoadedVersion, *, arrays: dict[str, np.ndarray] | None, raw: dict[str, Any] | None
) -> dict[str, np.ndarray]:
    """Model inputs from validated arrays, or from readable inputs through the version's pre-processing
    (then validated against the signature like any tensor input)."""
    from apps.inference.runtime.validation import validate_inputs

    if raw is not None:
        prepared = loaded.processor.preprocess(raw)
        if prepared is None:
            from apps.inference.runtime.codecs import decode_inputs

            prepared = decode_inputs(raw, max_bytes=settings.INFERENCE_MAX_REQUEST_BYTES)
        return validate_inputs(loaded.signature, prepared)
    return arrays or {}


@dataclass
class RunOutcome:
    outputs: dict[str, Any]
    answer: Any
    provider: str
    timings: dict[str, float]


def run_version(
    loaded: LoadedVersion,
    inputs: dict[str, np.ndarray],
    *,
    time_limit: float | None = None,
    readable: bool = False,
    count_memory: bool = True,
) -> RunOutcome:
    """Run the loaded version on validated inputs; the readable answer too when ``readable``.

    What the run left in memory (ONNX Runtime's arena keeps what it allocated) counts in the session's cost in
    this process's cache; a session that its runs pushed past the cache's budget is dropped, and its memory
    returns to the system once the caller lets go of ``loaded``. ``count_memory=False`` skips that (two reads of
    /proc, microseconds: the performance card's timed runs)."""
    count_memory = count_memory and loaded.key is not None
    resident_before = resident_bytes() if count_memory else 0
    started = time.perf_counter()
    outputs = run_session(
        loaded.session, inputs, time_limit=time_limit, max_output_bytes=settings.INFERENCE_MAX_OUTPUT_BYTES
    )
    run_ms = (time.perf_counter() - started) * 1000
    if count_memory:
        kept = resident_bytes() - resident_before - sum(_nbytes(value) for value in outputs.values())
        if session_cache().count_run(loaded.key, kept):
            logger.warning(
                "The session of %s kept %d MiB after a run, past the session cache's %d MiB: dropped (loaded again "
                "when next asked for).",
                loaded.version,
                kept // (1024 * 1024),
                int(settings.INFERENCE_SESSION_CACHE_MB),
            )
    answer = None
    if readable:
        answer = loaded.processor.postprocess(outputs, inputs)
    total_ms = (time.perf_counter() - started) * 1000
    return RunOutcome(
        outputs, answer, loaded.provider, {"run_ms": round(run_ms, 3), "post_ms": round(total_ms - run_ms, 3)}
    )


def _nbytes(value: Any) -> int:
    return int(value.nbytes) if isinstance(value, np.ndarray) else 0


# A string tensor travels as ``<name>.utf8`` beside the ``<name>.npy`` members of other tensors: an ``.npy`` of the
# int64 UTF-8 byte lengths of its elements (in the tensor's shape), followed by those bytes end to end. NumPy would
# pickle an object array of ``str`` (which the reader refuses to unpickle), and a fixed-width ``<U`` array costs
# the longest string times the element count, four bytes a character: one long string among many short ones
# within the request limit would take gigabytes.
STRING_MEMBER_SUFFIX = ".utf8"


def pack_tensors(arrays: dict[str, Any] | None) -> bytes:
    """Tensors as a prediction keeps them (its inputs and outputs in the database, the outputs in the message to a
    waiting caller): the online wire format (``apps.inference.online.messages.pack``), a compact JSON header then each
    tensor's bytes. Writing and reading it costs microseconds where an ``.npz`` archive cost a tenth of a millisecond
    each way, on every durable prediction. Nothing is pickled; string tensors travel in the header."""
    from apps.inference.online import messages

    return messages.pack({}, arrays or {})


def unpack_tensors(data: bytes | memoryview | None) -> dict[str, np.ndarray]:
    """The tensors of ``pack_tensors`` bytes; rows written before it as ``.npz`` (``arrays_to_npz``) read as well.
    Arrays come back read-only, over the bytes given."""
    if not data:
        return {}
    data = bytes(data)
    if data[:2] == b"PK":  # an .npz (zip) archive: a row written before the wire format
        return npz_to_arrays(data)
    from apps.inference.online import messages

    try:
        _header, arrays = messages.unpack(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # AttributeError: a header not an object
        raise ValueError(f"Stored tensors are damaged: {exc}") from None
    return arrays


def arrays_to_npz(arrays: dict[str, Any]) -> bytes:
    """Tensors as uncompressed ``.npz`` bytes (fast; the database compresses large values itself). Numbers,
    booleans and ``<U`` strings are ``<name>.npy`` members as ``np.savez`` writes them; object arrays of strings
    (what ONNX Runtime takes and answers for string tensors) are ``<name>.utf8`` members. Nothing is pickled."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            if not isinstance(value, np.ndarray):
                continue
            if value.dtype.hasobject:
                archive.writestr(name + STRING_MEMBER_SUFFIX, _strings_member(name, value))
            else:
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, value, allow_pickle=False)
    return buffer.getvalue()


def npz_to_arrays(data: bytes | memoryview | None) -> dict[str, np.ndarray]:
    """The tensors of ``.npz`` bytes written by ``arrays_to_npz`` (never unpickles); string tensors come back as
    object arrays of ``str``."""
    if not data:
        return {}
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        for info in archive.infolist():
            raw = archive.read(info)
            if info.filename.endswith(STRING_MEMBER_SUFFIX):
                arrays[info.filename.removesuffix(STRING_MEMBER_SUFFIX)] = _strings_of(info.filename, raw)
            elif info.filename.endswith(".npy"):
                arrays[info.filename.removesuffix(".npy")] = np.lib.format.read_array(
                    io.BytesIO(raw), allow_pickle=False
                )
            else:
                raise ValueError(f"Unexpected member {info.filename!r} in stored tensors.")
    return arrays


def _strings_member(name: str, value: np.ndarray) -> bytes:
    try:
        encoded = [item.encode() if isinstance(item, str) else bytes(item) for item in value.ravel().tolist()]
    except (TypeError, UnicodeEncodeError) as exc:
        raise ValueError(f"Tensor {name!r} holds objects that are not text: {exc}") from None
    lengths = np.fromiter((len(item) for item in encoded), dtype=np.int64, count=len(encoded)).reshape(value.shape)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, lengths, allow_pickle=False)
    buffer.write(b"".join(encoded))
    return buffer.getvalue()


def _strings_of(member: str, raw: bytes) -> np.ndarray:
    stream = io.BytesIO(raw)
    lengths = np.lib.format.read_array(stream, allow_pickle=False)
    text = raw[stream.tell() :]
    if lengths.dtype.kind != "i" or (lengths < 0).any() or int(lengths.sum()) != len(text):
        raise ValueError(f"Stored string tensor {member!r} is damaged: its lengths do not match its bytes.")
    ends = np.cumsum(lengths.ravel()).tolist()
    starts = [0, *ends][: len(ends)]
    strings = np.empty(len(ends), dtype=object)
    strings[:] = [text[start:end].decode() for start, end in zip(starts, ends, strict=True)]
    return strings.reshape(lengths.shape)
