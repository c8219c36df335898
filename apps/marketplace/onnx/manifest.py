"""``gpux.yml``: the manifest of the GPUX runtime; parse, validate, compare with a model, and write one.

The format is the GPUX runtime's own (``GPUXConfig`` in ``src/gpux/config/parser.py`` of github.com/jmorenobl/gpux,
documented in its docs/tutorial/configuration.md): ``name``, ``version``, ``description``, ``model`` {``source``,
``format``, ``version``}, ``inputs`` and ``outputs`` (a mapping ``name: {type, shape, ...}`` or a list of
``{name, type, shape, ...}``), ``runtime`` {``gpu`` {``memory``, ``backend``}, ``batch_size``, ``timeout``,
``enable_profiling``}, ``serving``, ``preprocessing`` {``tokenizer``, ``max_length``, ``resize``, ``normalize``,
``custom``}, ``metadata``; the runtime's generator also writes ``tags``.

Two portal extensions, which GPUX ignores as it ignores any unknown field: ``postprocessing`` {``pooling``
(``mean``, ``cls``, ``max``, ``none``), ``normalize`` (L2), ``softmax``, ``output`` (the output it applies to)},
how the portal turns a model's outputs into a readable answer (``apps.inference.processing``); and ``examples``, a
list of request inputs as the API takes them (``{text: "..."}`` or ``{input_name: [[...]]}``), the first of which
the "try it" form starts with.

Differences, all on the lenient side for reading and the strict side for writing: a shape read here may hold
names (``batch``) and ``-1``/``null`` for dynamic dimensions (GPUX wants integers), and an unknown field is an
error here (GPUX ignores it; a typo such as ``runtme`` should not pass silently). ``export_manifest`` writes
integer shapes only (``-1`` for a dynamic dimension, the names kept in ``metadata.dynamic_axes``), so that the
GPUX CLI reads what the portal writes.

Errors name the field by its path: ``inputs[0].shape: expected a list of integers or names``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import yaml

from apps.core import parsing
from apps.marketplace.onnx.limits import Limits

FORMATS = ("onnx",)
BACKENDS = ("auto", "cuda", "tensorrt", "rocm", "openvino", "coreml", "directml", "dx12", "metal", "vulkan", "cpu")
TYPE_ALIASES = {
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "str": "string",
    "int": "int64",
    "long": "int64",
    "boolean": "bool",
}
TYPES = (
    "float32", "float16", "float64", "bfloat16", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool", "string",
)  # fmt: skip
MEMORY_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB)\s*$", re.IGNORECASE)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DIM_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")

TOP_FIELDS = {"name", "version", "description", "model", "inputs", "outputs", "runtime", "serving", "preprocessing",
              "metadata", "tags", "postprocessing", "examples"}  # fmt: skip
MODEL_FIELDS = {"source", "format", "version"}
INPUT_FIELDS = {"name", "type", "shape", "required", "max_length", "description"}
OUTPUT_FIELDS = {"name", "type", "shape", "labels", "description"}
RUNTIME_FIELDS = {"gpu", "batch_size", "timeout", "enable_profiling"}
GPU_FIELDS = {"memory", "backend"}
SERVING_FIELDS = {"port", "host", "batch_size", "timeout", "max_workers"}
PREPROCESSING_FIELDS = {"tokenizer", "max_length", "resize", "normalize", "custom"}
POSTPROCESSING_FIELDS = {"pooling", "normalize", "softmax", "output"}
POOLINGS = ("cls", "max", "mean", "none")
MAX_EXAMPLES = 10
READABLE_EXAMPLE_INPUTS = {"text": "tokenizer", "image": "resize"}  # what preprocessing makes them readable


class ManifestError(ValueError):
    """A gpux.yml that cannot be used; ``errors`` holds every ``"path: reason"`` message."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def load_yaml(text: str | bytes, *, max_bytes: int = Limits.max_manifest_bytes) -> Any:
    """``yaml.safe_load`` of a bounded, UTF-8, alias-free document nested at most ``INPUT_MAX_NESTING_DEPTH`` deep,
    its text Unicode (apps.core.parsing); ManifestError with the reason otherwise."""
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise ManifestError([f"gpux.yml: the file is {len(text)} bytes; the limit is {max_bytes}."])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError([f"gpux.yml: not valid UTF-8 text (byte {exc.start})."]) from exc
    if len(text.encode("utf-8")) > max_bytes:
        raise ManifestError([f"gpux.yml: the file is larger than {max_bytes} bytes."])
    if "\x00" in text:
        raise ManifestError(["gpux.yml: the file contains a NUL character."])
    try:
        return parsing.load_yaml(text)
    except parsing.InvalidText as exc:
        raise ManifestError([f"gpux.yml: {exc.path or 'the document'}: {exc.reason}"]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError([f"gpux.yml: not valid YAML{where}: {problem}"]) from exc


# --- validation --------------------------------------------------------------------------------------------------


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}" if path else message)

    def mapping(self, value: Any, path: str, allowed: set[str]) -> dict | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(path, "expected a mapping of fields")
            return None
        for key in value:
            if not isinstance(key, str):
                self.error(path, f"field names must be text, not {key!r}")
            elif key not in allowed:
                self.error(
                    f"{path}.{key}" if path else key, f"unknown field; expected one of {', '.join(sorted(allowed))}"
                )
        return value

    def text(self, data: dict, key: str, path: str, *, required: bool = False, max_length: int = 1000) -> str | None:
        value = data.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            if required:
                self.error(where, "this field is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(where, "expected text")
            return None
        value = str(value)
        if len(value) > max_length:
            self.error(where, f"at most {max_length} characters")
            return None
        return value

    def integer(self, data: dict, key: str, path: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
        value = data.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(where, "expected a whole number")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.error(where, f"expected a number {bound}")
            return None
        return value

    def boolean(self, data: dict, key: str, path: str) -> bool | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.error(f"{path}.{key}", "expected true or false")
            return None
        return value


def _composite_end(text: str, start: int) -> int | None:
    """Where the ONNX value type spelled at ``text[start:]`` ends (``signature.type_name``'s spelling:
    ``tensor(T)``, ``sparse_tensor(T)``, ``seq(V)``, ``map(K,V)``, ``optional(V)``), or None when it is not one."""
    match = re.compile(r"[a-z0-9_]+").match(text, start)
    if match is None:
        return None
    word, end = match.group(), match.end()
    if end >= len(text) or text[end] != "(":
        return end if word in TYPES else None
    if word in ("tensor", "sparse_tensor"):
        inner = re.compile(r"[a-z0-9]+").match(text, end + 1)
        if inner is None or inner.group() not in TYPES or text[inner.end() : inner.end() + 1] != ")":
            return None
        return inner.end() + 1
    position = end + 1
    if word == "map":
        key = re.compile(r"[a-z0-9]+,").match(text, position)
        if key is None or key.group()[:-1] not in TYPES:
            return None
        position = key.end()
    elif word not in ("seq", "optional"):
        return None
    inner_end = _composite_end(text, position)
    if inner_end is None or text[inner_end : inner_end + 1] != ")":
        return None
    return inner_end + 1


def composite_type(value: Any) -> str | None:
    """An ONNX value that is not a plain tensor, as the signature spells it (``seq(map(int64,tensor(float32)))``,
    the iris classifier's probabilities); None when ``value`` is not one."""
    if not isinstance(value, str) or len(value) > 200:
        return None
    word = value.replace(" ", "").lower()
    if "(" not in word or word.startswith("tensor("):
        return None
    return word if _composite_end(word, 0) == len(word) else None


def normalize_type(value: Any) -> str | None:
    """``float`` -> ``float32``, ``str`` -> ``string``; an ONNX sequence, map, optional or sparse tensor type as
    the signature spells it (what ``export_manifest`` writes for such values); None when not a known type."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower()
    word = TYPE_ALIASES.get(word, word)
    return word if word in TYPES else composite_type(word)


def _is_dim(dim: Any) -> bool:
    return dim is None or isinstance(dim, str) or (isinstance(dim, int) and not isinstance(dim, bool))


def _shape(checker: _Checker, value: Any, path: str) -> list[int | str | None] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(_is_dim(dim) for dim in value):
        checker.error(path, "expected a list of integers or names (a name or -1 for a dynamic dimension)")
        return None
    dims: list[int | str | None] = []
    for index, dim in enumerate(value):
        if isinstance(dim, int):
            if dim < -1:
                checker.error(f"{path}[{index}]", "a dimension is a number of at least 0, or -1 when dynamic")
            dims.append(None if dim == -1 else dim)
        elif isinstance(dim, str):
            if not DIM_NAME_PATTERN.match(dim):
                checker.error(f"{path}[{index}]", "a dimension name is letters, digits and underscores")
            dims.append(dim)
        else:
            dims.append(None)
    if len(dims) > 32:
        checker.error(path, "at most 32 dimensions")
    return dims


def _values(checker: _Checker, value: Any, path: str, allowed: set[str], *, kind: str) -> list[dict[str, Any]]:
    if value is None:
        checker.error(path, f"at least one {kind} is required")
        return []
    errors_before = len(checker.errors)
    if isinstance(value, dict):
        items = []
        for name, spec in value.items():
            where = f"{path}.{name}"
            if isinstance(spec, str):
                spec = {"type": spec}
            if not isinstance(spec, dict):
                checker.error(where, "expected a mapping with type and shape")
                continue
            items.append((where, {**spec, "name": name}))
    elif isinstance(value, list):
        items = []
        for index, spec in enumerate(value):
            where = f"{path}[{index}]"
            if not isinstance(spec, dict):
                checker.error(where, "expected a mapping with name, type and shape")
                continue
            items.append((where, spec))
    else:
        checker.error(path, f"expected a mapping of {kind} names to their type and shape, or a list")
        return []
    if not items and len(checker.errors) == errors_before:
        checker.error(path, f"at least one {kind} is required")
    result, seen = [], set()
    for where, spec in items:
        checker.mapping(spec, where, allowed)
        name = checker.text(spec, "name", where, required=True, max_length=256)
        if name is not None and name in seen:
            checker.error(f"{where}.name", f"“{name}” is listed twice")
        seen.add(name)
        raw_type = spec.get("type")
        elem_type = normalize_type(raw_type)
        if raw_type is None:
            checker.error(f"{where}.type", "this field is required")
        elif elem_type is None:
            checker.error(f"{where}.type", f"unknown type {raw_type!r}; expected one of {', '.join(TYPES)}")
        entry: dict[str, Any] = {
            "name": name,
            "type": elem_type,
            "shape": _shape(checker, spec.get("shape"), f"{where}.shape"),
        }
        if kind == "input":
            required = checker.boolean(spec, "required", where)
            entry["required"] = True if required is None else required
            max_length = checker.integer(spec, "max_length", where)
            if max_length is not None:
                entry["max_length"] = max_length
        else:
            labels = spec.get("labels")
            if labels is not None:
                if not isinstance(labels, list) or not all(isinstance(label, str | int) for label in labels):
                    checker.error(f"{where}.labels", "expected a list of label names")
                else:
                    entry["labels"] = [str(label) for label in labels]
        description = checker.text(spec, "description", where, max_length=2000)
        if description:
            entry["description"] = description
        result.append(entry)
    return result


def _postprocessing(checker: _Checker, value: Any, outputs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The portal's ``postprocessing`` section, normalized (only the fields given are kept)."""
    section = checker.mapping(value, "postprocessing", POSTPROCESSING_FIELDS)
    if section is None:
        return None
    normalized: dict[str, Any] = {}
    pooling = checker.text(section, "pooling", "postprocessing", max_length=32)
    if pooling is not None:
        if pooling.lower() not in POOLINGS:
            checker.error(
                "postprocessing.pooling", f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}"
            )
        else:
            normalized["pooling"] = pooling.lower()
    for key in ("normalize", "softmax"):
        flag = checker.boolean(section, key, "postprocessing")
        if flag is not None:
            normalized[key] = flag
    output = checker.text(section, "output", "postprocessing", max_length=256)
    if output is not None:
        names = [entry["name"] for entry in outputs if entry.get("name")]
        if names and output not in names:
            checker.error("postprocessing.output", f"the manifest has no output “{output}” (it has {', '.join(names)})")
        else:
            normalized["output"] = output
    return normalized


def _examples(checker: _Checker, value: Any, manifest: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The portal's ``examples``: up to MAX_EXAMPLES mappings of inputs as the API takes them, each naming an input
    of the manifest, or ``text`` / ``image`` when its preprocessing reads them."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_EXAMPLES:
        checker.error("examples", f"expected a list of at most {MAX_EXAMPLES} examples (each a mapping of inputs)")
        return None
    preprocessing = manifest.get("preprocessing") or {}
    names = [entry["name"] for entry in manifest.get("inputs") or [] if entry.get("name")]
    readable = [key for key, needs in READABLE_EXAMPLE_INPUTS.items() if preprocessing.get(needs)]
    examples = []
    for index, example in enumerate(value):
        where = f"examples[{index}]"
        if not isinstance(example, dict) or not example:
            checker.error(where, "expected a mapping of inputs, e.g. {text: ...} or {input_name: [[...]]}")
            continue
        for key in example:
            if key not in names and key not in readable:
                accepted = ", ".join([*readable, *names]) or "none"
                checker.error(f"{where}.{key}", f"not an input this model takes (it takes {accepted})")
        examples.append(example)
    return examples


def validate_manifest(data: Any) -> dict[str, Any]:
    """The normalized manifest (inputs and outputs as lists, types normalized), or ManifestError naming
    every bad field by its path."""
    checker = _Checker()
    if not isinstance(data, dict):
        raise ManifestError(["gpux.yml: expected a mapping of fields (name, version, model, inputs, outputs...)"])
    checker.mapping(data, "", TOP_FIELDS)
    name = checker.text(data, "name", "", required=True, max_length=128)
    if name is not None and not NAME_PATTERN.match(name):
        checker.error("name", "letters, digits, dots, dashes and underscores, starting with a letter or digit")
    manifest: dict[str, Any] = {
        "name": name,
        "version": checker.text(data, "version", "", max_length=64) or "1.0.0",
    }
    description = checker.text(data, "description", "", max_length=5000)
    if description:
        manifest["description"] = description

    model = checker.mapping(data.get("model"), "model", MODEL_FIELDS)
    if data.get("model") is None:
        checker.error("model", "this field is required (model.source names the ONNX file)")
    if model is not None:
        source = checker.text(model, "source", "model", required=True, max_length=1000)
        model_format = (checker.text(model, "format", "model", max_length=32) or "onnx").lower()
        if model_format not in FORMATS:
            checker.error("model.format", f"unsupported format {model_format!r}; expected onnx")
        manifest["model"] = {"source": source, "format": model_format}
        model_version = checker.text(model, "version", "model", max_length=64)
        if model_version:
            manifest["model"]["version"] = model_version

    manifest["inputs"] = _values(checker, data.get("inputs"), "inputs", INPUT_FIELDS, kind="input")
    manifest["outputs"] = _values(checker, data.get("outputs"), "outputs", OUTPUT_FIELDS, kind="output")

    runtime = checker.mapping(data.get("runtime"), "runtime", RUNTIME_FIELDS)
    if runtime is not None:
        normalized: dict[str, Any] = {}
        gpu = checker.mapping(runtime.get("gpu"), "runtime.gpu", GPU_FIELDS)
        if gpu is not None:
            normalized["gpu"] = {}
            memory = checker.text(gpu, "memory", "runtime.gpu", max_length=32)
            if memory is not None:
                match = MEMORY_PATTERN.match(memory)
                if not match:
                    checker.error("runtime.gpu.memory", "expected an amount such as 2GB, 512MB or 1024KB")
                else:
                    normalized["gpu"]["memory"] = f"{match.group(1)}{match.group(2).upper()}"
            backend = checker.text(gpu, "backend", "runtime.gpu", max_length=32)
            if backend is not None:
                if backend.lower() not in BACKENDS:
                    checker.error(
                        "runtime.gpu.backend", f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}"
                    )
                else:
                    normalized["gpu"]["backend"] = backend.lower()
        for key, maximum in (("batch_size", 65536), ("timeout", 86400)):
            number = checker.integer(runtime, key, "runtime", maximum=maximum)
            if number is not None:
                normalized[key] = number
        profiling = checker.boolean(runtime, "enable_profiling", "runtime")
        if profiling is not None:
            normalized["enable_profiling"] = profiling
        manifest["runtime"] = normalized

    serving = checker.mapping(data.get("serving"), "serving", SERVING_FIELDS)
    if serving is not None:
        normalized = {}
        port = checker.integer(serving, "port", "serving", maximum=65535)
        if port is not None:
            normalized["port"] = port
        host = checker.text(serving, "host", "serving", max_length=255)
        if host is not None:
            normalized["host"] = host
        for key, maximum in (("batch_size", 65536), ("timeout", 86400), ("max_workers", 1024)):
            number = checker.integer(serving, key, "serving", maximum=maximum)
            if number is not None:
                normalized[key] = number
        manifest["serving"] = normalized

    preprocessing = checker.mapping(data.get("preprocessing"), "preprocessing", PREPROCESSING_FIELDS)
    if preprocessing is not None:
        normalized = {}
        for key in ("tokenizer", "normalize"):
            value = checker.text(preprocessing, key, "preprocessing", max_length=500)
            if value is not None:
                normalized[key] = value
        max_length = checker.integer(preprocessing, "max_length", "preprocessing", maximum=1_000_000)
        if max_length is not None:
            normalized["max_length"] = max_length
        resize = preprocessing.get("resize")
        if resize is not None:
            if (
                not isinstance(resize, list)
                or len(resize) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 65536 for v in resize)
            ):
                checker.error("preprocessing.resize", "expected [width, height], two whole numbers")
            else:
                normalized["resize"] = resize
        custom = preprocessing.get("custom")
        if custom is not None:
            if not isinstance(custom, dict):
                checker.error("preprocessing.custom", "expected a mapping")
            else:
                normalized["custom"] = custom
        manifest["preprocessing"] = normalized

    postprocessing = _postprocessing(checker, data.get("postprocessing"), manifest["outputs"])
    if postprocessing is not None:
        manifest["postprocessing"] = postprocessing

    examples = _examples(checker, data.get("examples"), manifest)
    if examples is not None:
        manifest["examples"] = examples

    metadata = data.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            checker.error("metadata", "expected a mapping")
        else:
            manifest["metadata"] = metadata
    tags = data.get("tags")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(tag, str) and 0 < len(tag) <= 64 for tag in tags):
            checker.error("tags", "expected a list of short texts")
        else:
            manifest["tags"] = tags

    if checker.errors:
        raise ManifestError(checker.errors)
    return manifest


def parse_manifest(text: str | bytes, *, max_bytes: int = Limits.max_manifest_bytes) -> dict[str, Any]:
    """Read and validate a gpux.yml; the normalized manifest or ManifestError."""
    return validate_manifest(load_yaml(text, max_bytes=max_bytes))


# --- against a model ------------------------------------------------------------------------------------------


def _source_path(source: str) -> str | None:
    if "://" in source:
        return None
    return PurePosixPath(source.replace("\\", "/")).as_posix().removeprefix("./")


def compare_with_signature(manifest: dict[str, Any], signature: dict[str, Any], *, main_file: str) -> list[str]:
    """Where the manifest disagrees with the model: its source, input and output names, types and fixed
    dimensions. Symbolic and dynamic dimensions agree with anything."""
    errors: list[str] = []
    source = (manifest.get("model") or {}).get("source")
    if source is not None and _source_path(source) != PurePosixPath(main_file).as_posix():
        errors.append(f"model.source: “{source}” is not this version's model file “{main_file}”")
    for kind in ("inputs", "outputs"):
        known = {entry["name"]: entry for entry in signature.get(kind) or []}
        for index, entry in enumerate(manifest.get(kind) or []):
            where = f"{kind}[{index}]"
            actual = known.get(entry.get("name"))
            if actual is None:
                names = ", ".join(sorted(known)) or "none"
                errors.append(f"{where}.name: the model has no {kind[:-1]} “{entry.get('name')}” (it has {names})")
                continue
            known_type = actual.get("elem_type") in TYPES or composite_type(actual.get("elem_type"))
            if entry.get("type") and known_type and entry["type"] != actual["elem_type"]:
                errors.append(f"{where}.type: “{entry['type']}”, but the model's is “{actual['elem_type']}”")
            declared, real = entry.get("shape"), actual.get("shape")
            if isinstance(declared, list) and isinstance(real, list):
                if len(declared) != len(real):
                    errors.append(
                        f"{where}.shape: {len(declared)} dimensions, but the model's has {len(real)} ({real})"
                    )
                else:
                    for dim, (mine, theirs) in enumerate(zip(declared, real, strict=True)):
                        if isinstance(mine, int) and isinstance(theirs, int) and mine != theirs:
                            errors.append(f"{where}.shape[{dim}]: {mine}, but the model's is {theirs}")
    return errors


def inspect_manifest_file(
    path: Any, *, main_file: str, signature: dict | None, limits: Limits
) -> tuple[dict | None, list[str]]:
    """Read, validate and compare a version's gpux.yml (in the validation child); ``(manifest, errors)``."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limits.max_manifest_bytes + 1)
        manifest = parse_manifest(data, max_bytes=limits.max_manifest_bytes)
    except ManifestError as exc:
        return None, [_prefixed(message) for message in exc.errors]
    errors = compare_with_signature(manifest, signature or {}, main_file=main_file)
    return manifest, [_prefixed(message) for message in errors]


def _prefixed(message: str) -> str:
    return message if message.startswith("gpux.yml") else f"gpux.yml: {message}"


# --- writing ---------------------------------------------------------------------------------------------------


def _export_type(elem_type: Any) -> str | None:
    return elem_type if elem_type in TYPES else None


def export_manifest(
    *,
    name: str,
    version: str,
    main_file: str,
    signature: dict[str, Any],
    description: str = "",
    base: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """A gpux.yml for a model version that the GPUX CLI reads: integer shapes only (``-1`` where dynamic,
    with the names under ``metadata.dynamic_axes``), NumPy type names. ``base`` is an imported manifest
    whose runtime, serving, preprocessing, postprocessing and labels are kept."""
    base = base or {}
    base_outputs = {entry.get("name"): entry for entry in base.get("outputs") or []}
    base_inputs = {entry.get("name"): entry for entry in base.get("inputs") or []}
    dynamic_axes: dict[str, dict[int, str]] = {}

    def spec(entry: dict[str, Any], *, kind: str) -> dict[str, Any]:
        item: dict[str, Any] = {"type": _export_type(entry.get("elem_type")) or str(entry.get("elem_type"))}
        shape = entry.get("shape")
        if isinstance(shape, list):
            item["shape"] = [dim if isinstance(dim, int) else -1 for dim in shape]
            named = {index: dim for index, dim in enumerate(shape) if isinstance(dim, str)}
            if named:
                dynamic_axes[entry["name"]] = named
        if kind == "input":
            item["required"] = True
            max_length = base_inputs.get(entry["name"], {}).get("max_length")
            if max_length:
                item["max_length"] = max_length
        else:
            labels = base_outputs.get(entry["name"], {}).get("labels")
            if labels:
                item["labels"] = labels
        return item

    manifest: dict[str, Any] = {"name": name, "version": version}
    if description:
        manifest["description"] = description
    manifest["model"] = {"source": f"./{PurePosixPath(main_file).as_posix()}", "format": "onnx"}
    manifest["inputs"] = {entry["name"]: spec(entry, kind="input") for entry in signature.get("inputs") or []}
    manifest["outputs"] = {entry["name"]: spec(entry, kind="output") for entry in signature.get("outputs") or []}
    runtime = {"gpu": {"memory": "2GB", "backend": "auto"}, "batch_size": 1, "timeout": 30}
    base_runtime = base.get("runtime") or {}
    runtime["gpu"].update(base_runtime.get("gpu") or {})
    runtime.update({key: value for key, value in base_runtime.items() if key != "gpu"})
    manifest["runtime"] = runtime
    if base.get("serving"):
        manifest["serving"] = base["serving"]
    if base.get("preprocessing"):
        manifest["preprocessing"] = base["preprocessing"]
    if base.get("postprocessing") is not None:
        # The portal's extension: GPUX ignores an unknown field, and a portal that imports this file keeps it
        # (an empty section too: it turns the default pooling of a tokenizer model off).
        manifest["postprocessing"] = base["postprocessing"]
    if base.get("examples"):
        manifest["examples"] = base["examples"]
    if tags:
        manifest["tags"] = list(tags)
    meta = dict(base.get("metadata") or {})
    meta.update(metadata or {})
    if signature.get("opsets"):
        meta["opsets"] = signature["opsets"]
    if dynamic_axes:
        meta["dynamic_axes"] = dynamic_axes
    if meta:
        manifest["metadata"] = meta
    return yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)
