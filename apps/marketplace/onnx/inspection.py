"""Every check of an uploaded ONNX model, in the order that keeps a hostile file harmless.

Runs inside the validation child process (``apps.marketplace.onnx.validation``), never in a worker: parsing,
the checker and ONNX Runtime all run native code on untrusted bytes. The order matters:

1. sizes of every file of the version (before reading any), then the model file parses as a ``ModelProto``
   with a graph (external data NOT loaded);
2. structure, from the protobuf alone: text (UTF-8, no NUL, bounded length), declared tensor sizes (dims x
   element size, sparse tensors counted dense: nothing is allocated), external-data locations (relative,
   inside the version directory, no ``..``, no links, existing regular files, offset and length inside them);
3. only when all of that passed: ``onnx.checker.check_model`` (full check, on the path so that external
   data is checked where it lies) and an ONNX Runtime session on CPU.

Each failure is one sentence a person understands; the report is a JSON-able dict.
"""

from __future__ import annotations

import gc
import os
import re
import stat
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from apps.marketplace.onnx.limits import Limits

MAX_ERRORS = 25
PROTOBUF_LIMIT = 2**31  # a serialized protobuf message cannot be 2 GiB or larger
MANIFEST_NAMES = ("gpux.yml", "gpux.yaml")
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"})

# Bits per element of each TensorProto data type (strings are counted by their bytes).
_ELEMENT_BITS = {
    "FLOAT": 32, "UINT8": 8, "INT8": 8, "UINT16": 16, "INT16": 16, "INT32": 32, "INT64": 64, "BOOL": 8,
    "FLOAT16": 16, "DOUBLE": 64, "UINT32": 32, "UINT64": 64, "COMPLEX64": 64, "COMPLEX128": 128, "BFLOAT16": 16,
    "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8, "FLOAT8E8M0": 8,
    "UINT4": 4, "INT4": 4, "FLOAT4E2M1": 4, "UINT2": 2, "INT2": 2,
}  # fmt: skip


class Report:
    """Collects errors (capped), per-check outcomes and the facts found; ``as_dict()`` is the JSON report."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.hidden_errors = 0
        self.checks: dict[str, str] = {}
        self.warnings: list[str] = []
        self.signature: dict[str, Any] | None = None
        self.onnx_info: dict[str, Any] = {}
        self.detected_task: str | None = None
        self.manifest: dict[str, Any] | None = None

    def error(self, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)
        else:
            self.hidden_errors += 1

    def outcome(self, check: str, errors_before: int) -> bool:
        passed = len(self.errors) + self.hidden_errors == errors_before
        self.checks[check] = "passed" if passed else "failed"
        return passed

    @property
    def error_count(self) -> int:
        return len(self.errors) + self.hidden_errors

    def as_dict(self) -> dict[str, Any]:
        errors = list(self.errors)
        if self.hidden_errors:
            errors.append(f"… and {self.hidden_errors} more problems of the same kinds.")
        return {
            "ok": not errors,
            "errors": errors,
            "warnings": self.warnings,
            "checks": self.checks,
            "signature": self.signature,
            "onnx_info": self.onnx_info,
            "detected_task": self.detected_task,
            "manifest": self.manifest,
        }


def failure_report(message: str, *, check: str = "process") -> dict[str, Any]:
    """A report that says only that validation could not run to the end, and why."""
    report = Report()
    report.error(message)
    report.checks[check] = "failed"
    return report.as_dict()


def _shown(value: str | bytes, limit: int = 60) -> str:
    """A name as it can be shown in a message: decoded leniently, control characters escaped, shortened."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in value[: limit + 1])
    return value if len(value) <= limit else value[:limit] + "…"


# --- 1. files and parsing ------------------------------------------------------------------------------------


def _human_bytes(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"  # pragma: no cover


def _sizes(size: int, limit: int) -> tuple[str, str]:
    """Both sizes for a message; exact byte counts when rounding would make them look equal."""
    shown, limit_shown = _human_bytes(size), _human_bytes(limit)
    if shown == limit_shown:
        return f"{size:,} bytes", f"{limit:,} bytes"
    return shown, limit_shown


def check_files(root: Path, limits: Limits, report: Report) -> dict[str, int]:
    """Every file of the version directory is a regular file (no links) under the size limit; their sizes."""
    sizes: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            relative = full.relative_to(root).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                report.error(f"“{_shown(relative)}” is a symbolic link; a version holds only plain files.")
            elif stat.S_ISREG(mode):
                size = os.lstat(full).st_size
                sizes[relative] = size
                if size > limits.max_file_bytes:
                    shown, limit_shown = _sizes(size, limits.max_file_bytes)
                    report.error(f"“{_shown(relative)}” is {shown}; the limit for one file is {limit_shown}.")
            elif not stat.S_ISDIR(mode):
                report.error(f"“{_shown(relative)}” is not a plain file.")
    return sizes


def parse_model(path: Path, report: Report) -> Any:
    """The ``ModelProto`` of ``path`` without its external data, or None (with the reason in the report)."""
    import onnx
    from google.protobuf.message import DecodeError

    data = path.read_bytes()
    if not data:
        report.error("The model file is empty.")
        return None
    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise_if_out_of_memory(exc)
        if path.stat().st_size >= PROTOBUF_LIMIT:
            report.error(
                "The model file is 2 GiB or more, more than one ONNX protobuf can hold: store the weights as "
                "external data (a “model.onnx.data” file beside the model) and upload both."
            )
            return None
        report.error(
            "The file is not an ONNX model: it cannot be read as an ONNX protobuf (ModelProto); it may be "
            f"truncated, corrupted or another format ({_shown(str(exc), 120)})."
        )
        return None
    finally:
        del data
    if not model.HasField("graph"):
        report.error(
            "The file is a protobuf message but not an ONNX model: it has no graph (is it a single tensor, "
            "or another kind of message?)."
        )
        return None
    if model.ir_version <= 0:
        report.error("The file is not a usable ONNX model: it declares no IR version.")
        return None
    if not model.opset_import:
        report.error("The file is not a usable ONNX model: it imports no operator set (opset).")
        return None
    return model


_MEMORY_WORDS = ("alloc failed", "bad_alloc", "cannot allocate memory", "out of memory", "failed to allocate")


def raise_if_out_of_memory(exc: BaseException) -> None:
    """Native code reports a failed allocation as an ordinary error: turn it into MemoryError."""
    text = str(exc).lower()
    if any(word in text for word in _MEMORY_WORDS):
        raise MemoryError(str(exc)) from exc


# --- walking the model ------------------------------------------------------------------------------------------


def iter_graphs(model: Any) -> Iterator[tuple[str, Any]]:
    """The main graph, training graphs and every subgraph (If/Loop/Scan bodies), with where each is."""
    stack: list[tuple[str, Any]] = [("the graph", model.graph)]
    for index, info in enumerate(model.training_info):
        stack.append((f"training graph {index}", info.algorithm))
        stack.append((f"training initialization {index}", info.initialization))
    for function in model.functions:
        for node in function.node:
            stack.extend(_subgraphs(node, f"function “{_shown(function.name)}”"))
    while stack:
        where, graph = stack.pop()
        yield where, graph
        for node in graph.node:
            stack.extend(_subgraphs(node, where))


def _subgraphs(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    label = _node_label(node)
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield f"{where}, {label}, subgraph “{_shown(attribute.name)}”", attribute.g
        for index, graph in enumerate(attribute.graphs):
            yield f"{where}, {label}, subgraph “{_shown(attribute.name)}”[{index}]", graph


def _node_label(node: Any) -> str:
    name = node.name if isinstance(node.name, str) and node.name else ""
    op_type = node.op_type if isinstance(node.op_type, str) else "?"
    return f"node “{_shown(name)}” ({_shown(op_type)})" if name else f"a {_shown(op_type)} node"


def iter_nodes(model: Any) -> Iterator[tuple[str, Any]]:
    """Every node of every graph and function, with where it is."""
    for where, graph in iter_graphs(model):
        for node in graph.node:
            yield where, node
    for function in model.functions:
        for node in function.node:
            yield f"function “{_shown(function.name)}”", node


def iter_tensors(model: Any) -> Iterator[tuple[str, Any, Any]]:
    """Every stored tensor: ``(label, tensor, sparse)`` where ``sparse`` is the SparseTensorProto (or None)
    that ``tensor`` is the values or indices of. Initializers, sparse initializers, tensor attributes and
    Constant nodes, in every graph and function."""
    for where, graph in iter_graphs(model):
        for tensor in graph.initializer:
            yield f"initializer “{_shown(tensor.name)}” ({where})", tensor, None
        for sparse in graph.sparse_initializer:
            label = f"sparse initializer “{_shown(sparse.values.name)}” ({where})"
            yield label, sparse.values, sparse
            yield f"{label} indices", sparse.indices, None
    for where, node in iter_nodes(model):
        for attribute in node.attribute:
            label = f"{_node_label(node)} attribute “{_shown(attribute.name)}” ({where})"
            if attribute.HasField("t"):
                yield label, attribute.t, None
            for index, tensor in enumerate(attribute.tensors):
                yield f"{label}[{index}]", tensor, None
            sparse_list = ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []) + list(
                attribute.sparse_tensors
            )
            for sparse in sparse_list:
                yield label, sparse.values, sparse
                yield f"{label} indices", sparse.indices, None


# --- 2a. text -----------------------------------------------------------------------------------------------


def iter_texts(model: Any) -> Iterator[tuple[str, Any]]:
    """Every human-readable string of the model with a label saying what it is."""
    yield "the producer name", model.producer_name
    yield "the producer version", model.producer_version
    yield "the model domain", model.domain
    yield "the model doc string", model.doc_string
    for index, prop in enumerate(model.metadata_props):
        yield f"metadata key {index + 1}", prop.key
        yield f"the metadata value of “{_shown(prop.key)}”", prop.value
    for opset in model.opset_import:
        yield "an opset domain", opset.domain
    for function in model.functions:
        label = f"function “{_shown(function.name)}”"
        yield "a function name", function.name
        yield f"the domain of {label}", function.domain
        yield f"the doc string of {label}", function.doc_string
        for name in [*function.input, *function.output, *function.attribute]:
            yield f"an input, output or attribute name of {label}", name
    for where, graph in iter_graphs(model):
        yield f"the name of {where}", graph.name
        yield f"the doc string of {where}", graph.doc_string
        for kind, values in (("input", graph.input), ("output", graph.output), ("value info", graph.value_info)):
            for index, value in enumerate(values):
                yield f"the name of {kind} {index + 1} of {where}", value.name
                yield f"the doc string of {kind} “{_shown(value.name)}” of {where}", value.doc_string
    for where, node in iter_nodes(model):
        label = f"{_node_label(node)} in {where}"
        yield f"the name of {label}", node.name
        yield f"the operator type of {label}", node.op_type
        yield f"the domain of {label}", node.domain
        yield f"the doc string of {label}", node.doc_string
        for name in [*node.input, *node.output]:
            yield f"an input or output name of {label}", name
        for attribute in node.attribute:
            yield f"an attribute name of {label}", attribute.name
            yield f"the doc string of attribute “{_shown(attribute.name)}” of {label}", attribute.doc_string
            yield f"the reference of attribute “{_shown(attribute.name)}” of {label}", attribute.ref_attr_name
    for label, tensor, _sparse in iter_tensors(model):
        yield f"the name of {label}", tensor.name
        yield f"the doc string of {label}", tensor.doc_string
        for entry in tensor.external_data:
            yield f"an external data key of {label}", entry.key
            yield f"the external data “{_shown(entry.key)}” of {label}", entry.value


def check_texts(model: Any, limits: Limits, report: Report) -> None:
    """Names, doc strings, metadata and producer are valid UTF-8, without NUL, of bounded length."""
    for label, value in iter_texts(model):
        if isinstance(value, bytes):
            report.error(f"{_capital(label)} is not valid UTF-8 text (“{_shown(value)}”).")
        elif "\x00" in value:
            report.error(f"{_capital(label)} contains a NUL character (“{_shown(value)}”).")
        elif len(value) > limits.max_text_length:
            report.error(f"{_capital(label)} is {len(value)} characters long; the limit is {limits.max_text_length}.")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- 2b. declared tensor sizes -----------------------------------------------------------------------------------


def _element_bits(data_type: int) -> int | None:
    from onnx import TensorProto

    try:
        return _ELEMENT_BITS.get(TensorProto.DataType.Name(data_type))
    except ValueError:
        return None


def declared_bytes(dims: Any, data_type: int, tensor: Any = None) -> int | None:
    """Bytes a tensor of ``dims`` and ``data_type`` takes once dense; computed, never allocated.

    ``None`` when the element type is unknown. Strings count the bytes of their stored values.
    """
    from onnx import TensorProto

    count = 1
    for dim in dims:
        count *= int(dim)
    if data_type == TensorProto.STRING:
        return sum(len(value) for value in tensor.string_data) if tensor is not None else 0
    bits = _element_bits(data_type)
    if bits is None:
        return None
    return (count * bits + 7) // 8


def check_tensor_sizes(model: Any, limits: Limits, report: Report) -> int:
    """Each declared tensor (dims x element size; a sparse tensor's dense shape) is under the limit.

    Returns the total declared bytes.
    """
    total = 0
    for label, tensor, sparse in iter_tensors(model):
        dims = list(sparse.dims) if sparse is not None else list(tensor.dims)
        if any(dim < 0 for dim in dims):
            report.error(f"The {label} declares a negative dimension {dims}.")
            continue
        size = declared_bytes(dims, tensor.data_type, tensor)
        if size is None:
            report.error(f"The {label} has an unknown element type ({tensor.data_type}).")
            continue
        total += size
        if size > limits.max_tensor_bytes:
            what = "its dense shape" if sparse is not None else "its shape"
            shown, limit_shown = _sizes(size, limits.max_tensor_bytes)
            report.error(f"The {label} declares {shown} ({what} {dims}); the limit for one tensor is {limit_shown}.")
    return total


# --- 2c. external data --------------------------------------------------------------------------------------------


def relative_parts(relative: str, *, what: str) -> tuple[list[str], str | None]:
    """The parts of a reference that stays inside its folder, or the reason it does not (absolute, ``..``,
    NUL, empty). Reads nothing."""
    if not relative:
        return [], f"{_capital(what)} names no file."
    if "\x00" in relative:
        return [], f"{_capital(what)} “{_shown(relative)}” contains a NUL character."
    normalized = relative.replace("\\", "/")
    if normalized.startswith("/") or PureWindowsPath(relative).is_absolute() or PureWindowsPath(relative).drive:
        return [], (
            f"{_capital(what)} “{_shown(relative)}” is an absolute path; it must be a path relative to the "
            "model, inside the same version."
        )
    parts = [part for part in PurePosixPath(normalized).parts if part not in ("", ".")]
    if ".." in parts:
        return [], (
            f"{_capital(what)} “{_shown(relative)}” goes up with “..”: it points outside the version; only "
            "files of the same version can be referenced."
        )
    if not parts:
        return [], f"{_capital(what)} “{_shown(relative)}” names no file."
    return parts, None


def resolve_inside(root: Path, relative: str, *, what: str) -> tuple[Path | None, str | None]:
    """``root / relative`` when it is a plain, existing file inside ``root`` reached without links;
    otherwise ``(None, the reason)``. Nothing outside ``root`` is read: each step is ``lstat``-ed."""
    parts, problem = relative_parts(relative, what=what)
    if problem:
        return None, problem
    current = root
    for part in parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None, f"{_capital(what)} “{_shown(relative)}” is missing from the version."
        except OSError as exc:
            return None, f"{_capital(what)} “{_shown(relative)}” cannot be read ({exc.strerror})."
        if stat.S_ISLNK(mode):
            return None, f"{_capital(what)} “{_shown(relative)}” is a symbolic link; links are not followed."
    if not stat.S_ISREG(os.lstat(current).st_mode):
        return None, f"{_capital(what)} “{_shown(relative)}” is not a plain file."
    if root.resolve() not in current.resolve().parents:  # belt and braces: nothing above can be reached
        return None, f"{_capital(what)} “{_shown(relative)}” points outside the version."
    return current, None


def check_external_data(model: Any, root: Path, report: Report, *, files_present: bool = True) -> list[str]:
    """Every external-data reference is a relative path to a plain file of the version, its offset and
    length inside it; returns the files referenced. Checked before any external data is loaded.

    ``files_present=False`` (a model file checked on upload, before its companions arrive): only that the
    references stay inside the version."""
    from onnx import TensorProto

    files: set[str] = set()
    for label, tensor, sparse in iter_tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        if not isinstance(location, str):
            continue  # not UTF-8: already reported by the text check
        if not files_present:
            parts, problem = relative_parts(location, what=f"the external data of the {label}")
            if problem:
                report.error(problem)
            else:
                files.add("/".join(parts))
            continue
        path, problem = resolve_inside(root, location, what=f"the external data of the {label}")
        if problem:
            report.error(problem)
            continue
        files.add(path.relative_to(root).as_posix())
        size = path.stat().st_size
        try:
            offset = int(entries.get("offset") or 0)
            length = int(entries["length"]) if entries.get("length") else None
        except (TypeError, ValueError):
            report.error(f"The external data of the {label} has an offset or length that is not a number.")
            continue
        dims = list(tensor.dims)
        needed = declared_bytes(dims, tensor.data_type, tensor) if sparse is None else None
        if length is None:
            length = needed if needed is not None else size - offset
        if offset < 0 or length < 0 or offset + length > size:
            report.error(
                f"The external data of the {label} reads bytes {offset} to {offset + length} of “{location}”, "
                f"which has only {size} bytes."
            )
        elif needed is not None and length != needed and tensor.data_type != TensorProto.STRING:
            report.error(
                f"The external data of the {label} is {length} bytes long, but its shape {dims} needs {needed}."
            )
    return sorted(files)


# --- facts ------------------------------------------------------------------------------------------------------


def onnx_facts(model: Any) -> dict[str, Any]:
    """IR version, opsets, producer, custom operator domains, metadata and counts."""
    from apps.marketplace.onnx.signature import opsets_of

    used_domains = {node.domain for _where, node in iter_nodes(model)}
    declared_domains = {opset.domain for opset in model.opset_import}
    custom = sorted(
        domain
        for domain in used_domains | declared_domains
        if isinstance(domain, str) and domain not in STANDARD_DOMAINS
    )
    op_counts = Counter(
        f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        for _where, node in iter_nodes(model)
    )
    return {
        "ir_version": int(model.ir_version),
        "opsets": opsets_of(model),
        "producer_name": model.producer_name,
        "producer_version": model.producer_version,
        "domain": model.domain,
        "model_version": int(model.model_version),
        "doc_string": model.doc_string[:2000],
        "metadata_props": {prop.key: prop.value for prop in model.metadata_props},
        "custom_domains": custom,
        "node_count": sum(op_counts.values()),
        "op_types": dict(sorted(op_counts.items())),
        "initializer_count": len(model.graph.initializer) + len(model.graph.sparse_initializer),
        "function_count": len(model.functions),
    }


# --- 3. checker and ONNX Runtime -----------------------------------------------------------------------------------


def run_checker(path: Path, report: Report) -> None:
    """``onnx.checker.check_model`` with the full check (strict shape inference) on the file's path."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise_if_out_of_memory(exc)
        report.error(f"The ONNX checker refused the model: {_first_lines(str(exc))}")


_ORT_PREFIX = re.compile(r"^\s*\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")
_ORT_LOAD = re.compile(r"Load model from .*? failed:\s*")
_ORT_SOURCE = re.compile(r"/onnxruntime_src/\S+:\d+ ")


def clean_ort_message(message: str) -> str:
    """ONNX Runtime's message without its error-code prefix and C++ source location and function signature."""
    message = _ORT_LOAD.sub("", _ORT_PREFIX.sub("", message), count=1)
    match = _ORT_SOURCE.search(message)
    if match:
        rest = message[match.end() :]
        depth, seen_paren = 0, False
        for index, char in enumerate(rest):
            if char == "(":
                depth += 1
                seen_paren = True
            elif char == ")":
                depth -= 1
                if seen_paren and depth == 0:
                    message = message[: match.start()] + rest[index + 1 :]
                    break
    return _first_lines(message.strip())


def _first_lines(message: str, limit: int = 600) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = " ".join(lines)
    return text if len(text) <= limit else text[:limit] + "…"


def run_onnxruntime(path: Path, report: Report) -> None:
    """ONNX Runtime can create a session on CPU: it refuses unknown operator domains and impossible opsets,
    which the checker lets through."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except MemoryError:
        raise
    except Exception as exc:
        raise_if_out_of_memory(exc)
        text = str(exc)
        report.error(f"ONNX Runtime cannot load the model on CPU: {clean_ort_message(text)}")
        return
    del session


# --- the whole inspection -------------------------------------------------------------------------------------------


def precheck_model(path: str | Path, limits: Limits | None = None) -> dict[str, Any]:
    """The checks that need only the model file itself, for an upload before it is stored: size, parse,
    text, declared tensor sizes, external-data references that stay inside the version (their files may
    arrive later). No checker, no ONNX Runtime. Run it in the validation child as well."""
    limits = limits or Limits()
    report = Report()
    path = Path(path)
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        report.error("The model file is not a plain file.")
        report.checks["files"] = "failed"
        return report.as_dict()
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        shown, limit_shown = _sizes(size, limits.max_file_bytes)
        report.error(f"The model file is {shown}; the limit for one file is {limit_shown}.")
        report.checks["files"] = "failed"
        return report.as_dict()
    report.checks["files"] = "passed"
    report.onnx_info["file_size"] = size
    before = report.error_count
    model = parse_model(path, report)
    if not report.outcome("parse", before):
        return report.as_dict()
    for check, run in (
        ("text", lambda: check_texts(model, limits, report)),
        ("tensor_sizes", lambda: check_tensor_sizes(model, limits, report)),
        ("external_data", lambda: check_external_data(model, path.parent, report, files_present=False)),
    ):
        before = report.error_count
        run()
        report.outcome(check, before)
    return report.as_dict()


def inspect_model(directory: str | Path, main_file: str, limits: Limits | None = None) -> dict[str, Any]:
    """Check the model ``main_file`` of the version directory ``directory`` and describe it; the report dict.

    Run it in the validation child (``validation.validate_model``), not in a long-lived process.
    """
    from apps.marketplace.onnx.signature import extract_signature
    from apps.marketplace.onnx.task_detection import detect_task

    limits = limits or Limits()
    report = Report()
    root = Path(directory).resolve()

    before = report.error_count
    sizes = check_files(root, limits, report)
    path, problem = resolve_inside(root, main_file, what="the model file")
    if problem:
        report.error(problem)
    report.outcome("files", before)
    if path is None or report.error_count:
        return report.as_dict()
    report.onnx_info["file_size"] = sizes.get(path.relative_to(root).as_posix(), path.stat().st_size)

    before = report.error_count
    model = parse_model(path, report)
    if not report.outcome("parse", before):
        return report.as_dict()

    before = report.error_count
    check_texts(model, limits, report)
    report.outcome("text", before)

    before = report.error_count
    total = check_tensor_sizes(model, limits, report)
    report.outcome("tensor_sizes", before)

    before = report.error_count
    external_files = check_external_data(model, root, report)
    report.outcome("external_data", before)

    if report.error_count:  # never hand a model with unsafe references or hostile sizes to native code
        return report.as_dict()

    report.onnx_info.update(onnx_facts(model))
    report.onnx_info["external_data_files"] = external_files
    report.onnx_info["declared_tensor_bytes"] = total
    report.signature = extract_signature(model)
    report.detected_task = detect_task(report.signature)
    del model
    gc.collect()

    before = report.error_count
    run_checker(path, report)
    report.outcome("checker", before)

    if report.error_count:  # the checker's reason is the clearest; ONNX Runtime would only repeat it
        return report.as_dict()

    before = report.error_count
    run_onnxruntime(path, report)
    report.outcome("onnxruntime", before)

    manifest_path = next((root / name for name in MANIFEST_NAMES if (root / name).is_file()), None)
    if manifest_path is not None:
        from apps.marketplace.onnx.manifest import inspect_manifest_file

        before = report.error_count
        manifest, errors = inspect_manifest_file(
            manifest_path, main_file=main_file, signature=report.signature, limits=limits
        )
        for message in errors:
            report.error(message)
        report.manifest = manifest
        report.outcome("manifest", before)
    return report.as_dict()
