"""The KServe v2 / Open Inference Protocol over HTTP, so that Triton and KServe clients (``tritonclient[http]``,
``curl``) run the portal's models unchanged (docs/api/kserve.md).

Routes (``apps/inference/api/kserve_urls.py``, at the root of the site, outside ``/api/v1``)::

    GET  /v2                                             server metadata (name, version, extensions)
    GET  /v2/health/live, /v2/health/ready               the server is up / can take predictions
    GET  /v2/models/{name}[/versions/{version}]          model metadata (inputs and outputs with datatype, shape)
    GET  /v2/models/{name}[/versions/{version}]/ready    200 when it can run, 4xx (with the reason) when not
    POST /v2/models/{name}[/versions/{version}]/infer    run it

A v2 model name is one path segment: ``{owner}--{model}`` for a catalog model (``acme--iris``; the version is a
label, the latest published one when none is named) and ``{org}--deployments--{slug}`` for a deployment
(``acme--deployments--prod``; it picks its own version). Handles, org slugs, model names and deployment slugs never
hold ``--``, so the split is exact; ``/`` is not used because the protocol's URLs take the name as one segment.

Who may do what is the REST API's rule (``apps/inference/api/views.py``): metadata and readiness need ``view`` on
the model or deployment, ``infer`` needs ``run`` (and a token with the ``run`` scope). Not viewable: 404; viewable
but not runnable: 403; no credentials on ``infer``: 401. Health and server metadata are public.

A prediction runs as the REST API runs one (``submit_prediction``): the inputs are read into arrays here, checked
against the version's signature (``validate_inputs``), written as a job and run by an inference worker; this
process waits for the outcome and answers it, never running a model itself.

Errors answer ``{"error": "<message>"}`` (the protocol's field) plus the portal's ``code`` and ``detail``; a 400
also has ``errors`` by field (``inputs.float_input: ...``). Tensors come as JSON (``data``, flat or nested, row
major) or through the binary tensor extension: the JSON's length in the ``Inference-Header-Content-Length``
header, then each input's raw bytes (``parameters.binary_data_size``) in input order; outputs come back binary
when asked (``binary_data`` per output, or ``binary_data_output`` for all), little-endian, ``BYTES`` elements each
prefixed by their 4-byte length.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import TokenScope
from apps.core.api.errors import as_drf_validation_error
from apps.core.api.views import bound_organization_id
from apps.core.errors import Problems
from apps.core.jobs import JobStatus
from apps.core.parsing import InvalidText, NestingTooDeep, loads_json
from apps.inference import services
from apps.inference.api.views import (
    Conflict,
    DeploymentLookupMixin,
    PredictThrottle,
    RunFailed,
    run_online,
    submit_prediction,
)
from apps.inference.execution import unpack_tensors
from apps.inference.models import Deployment, DeploymentStatus
from apps.inference.predictions import (
    NotRunnable,
    PredictionInput,
    answer_of,
    require_runnable,
    sync_timeout,
    sync_timeout_maximum,
    viewable_models,
)
from apps.inference.runtime.signature import shape_text, tensor_type
from apps.inference.runtime.validation import InputValidationError, batch_axis, validate_inputs
from apps.marketplace.api.mixins import ModelLookupMixin
from apps.marketplace.models import Alias, Model, ModelVersion, VersionStatus

SERVER_NAME = "gpux-portal"
EXTENSIONS = ["binary_tensor_data"]
PLATFORM = "onnxruntime_onnx"
SEPARATOR = "--"
DEPLOYMENTS = "deployments"
HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"

# The protocol's datatypes and the signature's element types (NumPy names) they stand for. BF16 is in the
# protocol but NumPy cannot hold it: it is described in metadata and refused as input.
ELEM_TYPES: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "string",
}
DATATYPES: dict[str, str] = {elem: datatype for datatype, elem in ELEM_TYPES.items()} | {"bfloat16": "BF16"}
NUMERIC: dict[str, np.dtype] = {
    datatype: np.dtype(elem) for datatype, elem in ELEM_TYPES.items() if datatype not in ("BYTES", "BOOL")
}
UNSUPPORTED_PARAMETERS = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


# --- names ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class V2Name:
    """A v2 model name taken apart: the owner (org slug or handle), the model name or deployment slug."""

    owner: str
    name: str
    deployment: bool


def parse_v2_name(text: str) -> V2Name | None:
    """``acme--iris`` -> model iris of acme; ``acme--deployments--prod`` -> deployment prod of acme; else None."""
    parts = text.split(SEPARATOR)
    if len(parts) == 2 and all(parts):
        return V2Name(parts[0], parts[1], deployment=False)
    if len(parts) == 3 and parts[1] == DEPLOYMENTS and parts[0] and parts[2]:
        return V2Name(parts[0], parts[2], deployment=True)
    return None


def v2_name_of_model(model: Model) -> str:
    """The v2 name of a catalog model: ``{owner}--{name}``."""
    return f"{model.organization.slug}{SEPARATOR}{model.name}"


def v2_name_of_deployment(deployment: Deployment) -> str:
    """The v2 name of a deployment: ``{org}--deployments--{slug}``."""
    return f"{deployment.organization.slug}{SEPARATOR}{DEPLOYMENTS}{SEPARATOR}{deployment.slug}"


# --- metadata -----------------------------------------------------------------------------------------------------
def v2_shape(shape: list | None) -> list[int]:
    """A signature shape in the protocol's terms: fixed sizes as they are, symbolic or unknown ones -1; an unknown
    rank is written ``[-1]``."""
    if shape is None:
        return [-1]
    return [dim if isinstance(dim, int) and dim >= 0 else -1 for dim in shape]


def tensor_metadata(entries: list[dict]) -> list[dict[str, Any]]:
    """The signature's tensors as ``{"name", "datatype", "shape"}``; values that are not tensors of a protocol
    datatype (sequences, maps) are left out: a v2 client can neither send nor read them."""
    described = []
    for entry in entries or []:
        datatype = DATATYPES.get(tensor_type(entry.get("elem_type")) or "")
        if datatype is not None:
            described.append({"name": entry["name"], "datatype": datatype, "shape": v2_shape(entry.get("shape"))})
    return described


def _datatype_of_array(array: np.ndarray) -> str | None:
    if array.dtype.kind in "USO":
        return "BYTES"
    return DATATYPES.get(array.dtype.name)


# --- reading an inference request --------------------------------------------------------------------------------
@dataclass
class RequestedOutput:
    name: str
    binary: bool | None  # None: the request's default (binary_data_output)


@dataclass
class InferRequest:
    """An inference request read and checked against the version's signature, ready to run."""

    id: str | None
    arrays: dict[str, np.ndarray]
    outputs: list[RequestedOutput] = field(default_factory=list)
    binary_output: bool = False
    timeout: float | None = None  # seconds (the request's parameters.timeout is in microseconds)


def refuse(key: str, message: str, code: str = "invalid") -> exceptions.ValidationError:
    """A 400 naming ``key`` (raise it)."""
    return exceptions.ValidationError({key: [ErrorDetail(message, code=code)]})


def read_body(request: Any) -> bytes:
    """The request's body, decompressed (``Content-Encoding`` gzip or deflate), within
    ``INFERENCE_MAX_REQUEST_BYTES``; read from the stream, so Django's small form-data limit does not apply."""
    limit = settings.INFERENCE_MAX_REQUEST_BYTES
    stream = request.stream
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise refuse("body", f"the request is larger than this server takes ({limit} bytes)", "too_large")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise refuse("Content-Encoding", f"“{encoding}” is not supported; send gzip, deflate or none", "invalid")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise refuse("Content-Encoding", f"the body is not valid {encoding} data ({exc})") from exc
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise refuse("body", f"the request is larger than this server takes ({limit} bytes) once inflated", "too_large")
    return inflated


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON part and the binary part of a body; without the header the whole body is JSON."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise refuse(HEADER_LENGTH, f"expected a number of bytes, received “{header_length}”") from None
    if length <= 0:
        raise refuse(HEADER_LENGTH, f"expected the JSON's length in bytes (more than 0), received {length}")
    if length > len(body):
        raise refuse(HEADER_LENGTH, f"says the JSON is {length} bytes, but the whole body is {len(body)} bytes")
    return body[:length], body[length:]


def _read_shape(key: str, shape: Any, problems: Problems) -> list[int] | None:
    if not isinstance(shape, list) or not all(isinstance(dim, int) and not isinstance(dim, bool) for dim in shape):
        problems.add(key, f"shape must be a list of integers, received {json.dumps(shape)}", "wrong_shape")
        return None
    if any(dim < 0 for dim in shape):
        problems.add(key, f"shape {shape_text(shape)} has a negative dimension", "wrong_shape")
        return None
    return shape


def _from_binary(key: str, datatype: str, shape: list[int], chunk: bytes, problems: Problems) -> np.ndarray | None:
    count = math.prod(shape)
    if datatype == "BYTES":
        elements, offset = [], 0
        while offset < len(chunk):
            if offset + 4 > len(chunk):
                problems.add(key, f"binary BYTES data ends inside the length of element {len(elements)}")
                return None
            (size,) = struct.unpack_from("<I", chunk, offset)
            offset += 4
            if offset + size > len(chunk):
                problems.add(key, f"binary BYTES element {len(elements)} says {size} bytes, past the end of its data")
                return None
            raw = chunk[offset : offset + size]
            offset += size
            try:
                elements.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                problems.add(key, f"BYTES element {len(elements)} is not UTF-8 text", "wrong_dtype")
                return None
        if len(elements) != count:
            problems.add(
                key, f"shape {shape_text(shape)} holds {count} elements, but the binary data has {len(elements)}"
            )
            return None
        array = np.empty(count, dtype=np.object_)
        array[:] = elements
        return array.reshape(shape)
    dtype = np.dtype(np.uint8) if datatype == "BOOL" else NUMERIC[datatype]
    wanted = count * dtype.itemsize
    if len(chunk) != wanted:
        problems.add(
            key,
            f"shape {shape_text(shape)} of {datatype} needs {wanted} bytes ({count} × {dtype.itemsize}), "
            f"but binary_data_size is {len(chunk)}",
        )
        return None
    array = np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype)
    if datatype == "BOOL":
        if not np.isin(array, (0, 1)).all():
            problems.add(key, "binary BOOL data holds bytes other than 0 and 1", "wrong_dtype")
            return None
        array = array.astype(np.bool_)
    return array.reshape(shape)


def _flatten(data: Any):
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _from_json(key: str, datatype: str, shape: list[int], data: Any, problems: Problems) -> np.ndarray | None:
    count = math.prod(shape)
    if not isinstance(data, list):
        problems.add(key, f"data must be a list (flat or nested), received {type(data).__name__}")
        return None
    if datatype == "BYTES":
        elements = list(_flatten(data))
        wrong = next((item for item in elements if not isinstance(item, str)), None)
        if wrong is not None:
            problems.add(key, f"BYTES data holds {json.dumps(wrong)}, not text", "wrong_dtype")
            return None
        array = np.empty(len(elements), dtype=np.object_)
        array[:] = elements
    else:
        try:
            array = np.asarray(data)
        except (ValueError, OverflowError) as exc:
            problems.add(key, f"data is not a regular list of numbers ({exc})", "wrong_dtype")
            return None
        if array.size and array.dtype.kind not in "biuf":
            found = "text" if array.dtype.kind in "US" else "values that are not numbers"
            problems.add(key, f"data holds {found}; {datatype} wants numbers", "wrong_dtype")
            return None
        if array.dtype.kind not in "biuf":  # an empty list: any element type fits
            array = array.astype(np.float64)
    if array.size != count:
        problems.add(key, f"shape {shape_text(shape)} holds {count} elements, but data has {array.size}")
        return None
    return array.reshape(shape)


def _check_parameters(key: str, parameters: Any, problems: Problems) -> dict:
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        problems.add(key, "parameters must be an object")
        return {}
    for name in UNSUPPORTED_PARAMETERS:
        if name in parameters:
            problems.add(key, f"parameters.{name}: shared memory is not supported here; send the data", "unsupported")
    return parameters


def read_infer_request(body: bytes, header_length: str | None, signature: dict) -> InferRequest:
    """Read a v2 inference request (JSON, or JSON then binary tensors) and check it against ``signature``.

    Raises a DRF ``ValidationError`` (400) with every problem under its field: the body, the header, each input
    (``inputs.<name>``: its datatype against the model's, its shape against its data, then the signature's own
    checks: names, shapes, types, NaN) and each requested output (``outputs.<name>``).
    """
    header_bytes, binary = split_body(body, header_length)
    if not header_bytes:
        raise refuse("body", 'the request has no body; send {"inputs": [...]}', "required")
    try:
        header = loads_json(header_bytes)
    except NestingTooDeep as exc:
        raise refuse("body", f"the body is {exc}", "nesting_too_deep") from exc
    except InvalidText as exc:
        raise refuse(exc.path or "body", exc.reason, "invalid_text") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        hint = (
            "" if header_length is not None else f"; with binary tensor data, send the JSON's length in {HEADER_LENGTH}"
        )
        raise refuse("body", f"not valid JSON ({exc}){hint}", "parse_error") from exc
    if not isinstance(header, dict):
        raise refuse("body", 'expected a JSON object {"inputs": [...]}', "parse_error")
    problems = Problems()
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        problems.add("id", f"expected a string, received {json.dumps(request_id)}")
    parameters = _check_parameters("parameters", header.get("parameters"), problems)
    if parameters.get("sequence_id") not in (None, 0, ""):
        problems.add("parameters.sequence_id", "sequences (stateful models) are not supported here", "unsupported")
    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        problems.add("parameters.binary_data_output", f"expected true or false, received {json.dumps(binary_output)}")
    timeout = parameters.get("timeout")
    if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0):
        problems.add("parameters.timeout", f"expected microseconds (a number ≥ 0), received {json.dumps(timeout)}")
        timeout = None
    arrays = _read_inputs(header.get("inputs"), binary, signature, problems)
    outputs = _read_outputs(header.get("outputs"), signature, problems)
    seconds = None
    if timeout is not None:
        try:
            seconds = sync_timeout(timeout / 1_000_000)
        except DjangoValidationError:  # it names the REST API's field: say it in this protocol's terms
            maximum = sync_timeout_maximum()
            problems.add(
                "parameters.timeout",
                f"{timeout:g} µs is past this server's limit of {maximum:g} s ({maximum * 1_000_000:.0f} µs)",
                "out_of_range",
            )
    try:
        arrays = validate_inputs(signature, arrays)
    except InputValidationError as exc:
        for key, messages in exc.errors.items():
            if key in problems.errors:  # already explained above (its datatype, its data); it is "missing" here
                continue
            for message, code in zip(messages, exc.codes[key], strict=True):
                problems.add(key, message, code)
    if problems.errors:  # this protocol's views answer DRF's error, and callers of this function catch it
        raise as_drf_validation_error(problems.error())
    return InferRequest(
        id=request_id, arrays=arrays, outputs=outputs, binary_output=binary_output is True, timeout=seconds
    )


def _model_datatypes(signature: dict) -> dict[str, str | None]:
    return {
        entry["name"]: DATATYPES.get(tensor_type(entry.get("elem_type")) or "")
        for entry in signature.get("inputs") or []
    }


def _read_inputs(inputs: Any, binary: bytes, signature: dict, problems: Problems) -> dict[str, np.ndarray]:
    if not isinstance(inputs, list) or not inputs:
        problems.add("inputs", "required: a list of tensors, each with name, shape, datatype and data", "required")
        return {}
    wanted = _model_datatypes(signature)
    arrays: dict[str, np.ndarray] = {}
    offset, binary_ok = 0, True
    for index, entry in enumerate(inputs):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            problems.add(f"inputs[{index}]", "each input must be an object with a name", "required")
            continue
        name = entry["name"]
        key = f"inputs.{name}"
        if name in arrays or key in problems.errors:
            problems.add(key, "this input is given twice", "duplicate")
            continue
        parameters = _check_parameters(key, entry.get("parameters"), problems)
        size = parameters.get("binary_data_size")
        chunk = None
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                problems.add(key, f"parameters.binary_data_size must be a number of bytes, received {json.dumps(size)}")
                binary_ok = False
                continue
            if "data" in entry:
                problems.add(key, "send either data or binary data (parameters.binary_data_size), not both")
            if not binary_ok:
                continue
            if offset + size > len(binary):
                problems.add(
                    key,
                    f"parameters.binary_data_size is {size} bytes, but only {len(binary) - offset} bytes of binary "
                    "data are left in the body",
                )
                binary_ok = False
                continue
            chunk = binary[offset : offset + size]
            offset += size
        datatype = entry.get("datatype")
        if not isinstance(datatype, str) or datatype not in ELEM_TYPES:
            known = ", ".join([*ELEM_TYPES, "BF16"])
            reason = (
                "BF16 cannot be sent here (NumPy has no bfloat16); send FP32"
                if datatype == "BF16"
                else f"unknown datatype {json.dumps(datatype)}; the protocol's datatypes are {known}"
            )
            problems.add(key, reason, "wrong_dtype")
            continue
        model_datatype = wanted.get(name)
        if model_datatype is not None and model_datatype != datatype:
            problems.add(key, f"the model wants {model_datatype}, received datatype {datatype}", "wrong_dtype")
            continue
        shape = _read_shape(key, entry.get("shape"), problems)
        if shape is None:
            continue
        if chunk is not None:
            array = _from_binary(key, datatype, shape, chunk, problems)
        elif "data" not in entry:
            problems.add(key, "no data: send data, or binary data with parameters.binary_data_size", "required")
            continue
        else:
            array = _from_json(key, datatype, shape, entry["data"], problems)
        if array is not None:
            arrays[name] = array
    if binary_ok and offset < len(binary):
        problems.add(
            "body",
            f"{len(binary) - offset} bytes of binary data are past what the inputs' binary_data_size claim",
        )
    return arrays


def _read_outputs(outputs: Any, signature: dict, problems: Problems) -> list[RequestedOutput]:
    if outputs is None:
        return []
    if not isinstance(outputs, list):
        problems.add("outputs", "expected a list of {name, parameters}")
        return []
    known = [entry["name"] for entry in tensor_metadata(signature.get("outputs") or [])]
    other_types = {entry["name"]: entry.get("elem_type") for entry in signature.get("outputs") or []}
    requested: list[RequestedOutput] = []
    for index, entry in enumerate(outputs):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            problems.add(f"outputs[{index}]", "each output must be an object with a name", "required")
            continue
        key = f"outputs.{entry['name']}"
        if entry["name"] not in known:
            listing = ", ".join(known) or "(none)"
            if entry["name"] in other_types:
                reason = f"a {other_types[entry['name']]} is not a tensor, which this protocol cannot carry"
            else:
                reason = "unknown output"
            problems.add(key, f"{reason}; the model's tensor outputs are {listing}", "unknown_output")
            continue
        if any(item.name == entry["name"] for item in requested):
            problems.add(key, "this output is asked for twice", "duplicate")
            continue
        parameters = _check_parameters(key, entry.get("parameters"), problems)
        if parameters.get("classification"):
            problems.add(key, "parameters.classification is not supported here; read the output itself", "unsupported")
        binary = parameters.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            problems.add(key, f"parameters.binary_data must be true or false, received {json.dumps(binary)}")
            binary = None
        requested.append(RequestedOutput(entry["name"], binary))
    return requested


def items_of(signature: dict, arrays: dict[str, np.ndarray]) -> int:
    """How many items a request holds: its batch size when the model batches dynamically, else 1."""
    if batch_axis(signature or {}):
        first = next(iter(arrays.values()), None)
        if first is not None and first.ndim:
            return int(first.shape[0])
    return 1


# --- writing answers ----------------------------------------------------------------------------------------------
def json_response(body: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """A JSON answer; NaN and infinities are written as ``NaN`` / ``Infinity``, as Triton does."""
    response = HttpResponse(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), status=status, content_type=JSON_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _binary_of(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for item in array.ravel().tolist():
            raw = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _json_data(array: np.ndarray, datatype: str) -> list:
    if datatype == "BYTES":
        return [
            item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in array.ravel().tolist()
        ]
    return array.ravel().tolist()


def infer_response(
    *,
    model_name: str,
    model_version: str,
    request: InferRequest,
    outputs: dict[str, np.ndarray],
    order: list[str],
    parameters: dict[str, Any],
) -> HttpResponse:
    """The v2 answer: the requested outputs (all tensor outputs, in the model's order, when none were named), in
    JSON or, where asked, as binary data after the JSON (``Inference-Header-Content-Length`` then says where)."""
    wanted = request.outputs or [RequestedOutput(name, None) for name in order if name in outputs]
    described, blobs = [], []
    for requested in wanted:
        array = outputs.get(requested.name)
        if array is None:
            continue
        datatype = _datatype_of_array(array)
        if datatype is None:
            continue
        tensor: dict[str, Any] = {"name": requested.name, "datatype": datatype, "shape": list(array.shape)}
        binary = request.binary_output if requested.binary is None else requested.binary
        if binary:
            blob = _binary_of(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = _json_data(array, datatype)
        described.append(tensor)
    answer: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        answer["id"] = request.id
    answer["parameters"] = parameters
    answer["outputs"] = described
    header = json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()
    if not blobs:
        return HttpResponse(header, content_type=JSON_TYPE)
    response = HttpResponse(b"".join([header, *blobs]), content_type=BINARY_TYPE)
    response[HEADER_LENGTH] = str(len(header))
    return response


def error_body(data: Any) -> dict[str, Any]:
    """The protocol's ``{"error": message}`` from an answer of the API's exception handler, keeping the portal's
    ``code`` and ``detail`` (and ``errors`` by field for a 400)."""
    if isinstance(data, dict) and "detail" in data and not isinstance(data["detail"], list | dict):
        message = str(data["detail"])
        return {"error": message, "code": data.get("code") or "error", "detail": message}
    if isinstance(data, dict):
        fields = {key: value for key, value in data.items() if key not in ("code", "codes")}
    else:
        fields = {"non_field_errors": data}
    errors = {
        key: [str(item) for item in (value if isinstance(value, list) else [value])] for key, value in fields.items()
    }
    message = "; ".join(
        message if key == "non_field_errors" else f"{key}: {message}"
        for key, messages in errors.items()
        for message in messages
    )
    code = data.get("code", "validation_error") if isinstance(data, dict) else "validation_error"
    body = {"error": message, "code": code, "detail": message, "errors": errors}
    if isinstance(data, dict) and "codes" in data:
        body["codes"] = data["codes"]
    return body


# --- views ----------------------------------------------------------------------------------------------------------
class NotFoundV2(exceptions.NotFound):
    default_code = "not_found"


class TimedOut(exceptions.APIException):
    status_code = 504
    default_code = "prediction_timeout"


class Unready(exceptions.APIException):
    status_code = 503
    default_code = "not_ready"


class KServeView(APIView):
    """Base of the v2 routes: every answer, errors included, is the protocol's JSON whatever the client accepts."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)

    def handle_exception(self, exc):
        if isinstance(exc, Http404):
            exc = NotFoundV2("No such route or model here.")
        response = super().handle_exception(exc)
        if not isinstance(response, Response):
            return response
        headers = {name: response[name] for name in ("WWW-Authenticate", "Retry-After") if response.has_header(name)}
        return json_response(error_body(response.data), response.status_code, headers)


class PublicKServeView(KServeView):
    """Health and server metadata: public, like a load balancer's probe; credentials are not even read."""

    authentication_classes: tuple = ()
    permission_classes: tuple = ()
    throttle_classes: tuple = ()


SERVER_SCHEMA = {"tags": ["kserve"], "responses": {200: OpenApiTypes.OBJECT}}


class ServerMetadataView(PublicKServeView):
    """``GET /v2``: the server's name, version and the protocol extensions it supports."""

    @extend_schema(summary="KServe v2 server metadata", **SERVER_SCHEMA)
    def get(self, request) -> HttpResponse:
        try:
            version = metadata.version(SERVER_NAME)
        except metadata.PackageNotFoundError:
            version = "unknown"
        return json_response({"name": SERVER_NAME, "version": version, "extensions": EXTENSIONS})


class LiveView(PublicKServeView):
    """``GET /v2/health/live``: this process answers."""

    @extend_schema(summary="KServe v2 liveness", **SERVER_SCHEMA)
    def get(self, request) -> HttpResponse:
        return json_response({"live": True})


class ReadyView(PublicKServeView):
    """``GET /v2/health/ready``: the database and the job broker answer, so a prediction can be taken (503 with
    the reason when not)."""

    @extend_schema(
        summary="KServe v2 readiness",
        tags=["kserve"],
        responses={200: OpenApiTypes.OBJECT, 503: OpenApiResponse(description="Not ready, with the reason.")},
    )
    def get(self, request) -> HttpResponse:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:  # whatever fails, the server is not ready: say what
            raise Unready(f"The database does not answer: {exc}") from exc
        from apps.inference.completion import _client

        client = _client()
        if client is not None:
            try:
                client.ping()
            except Exception as exc:
                raise Unready(f"Redis (the job broker and result channel) does not answer: {exc}") from exc
        return json_response({"ready": True})


@dataclass
class Target:
    """What a v2 model name resolved to: a catalog model's version, or a deployment (and the version it serves)."""

    name: str
    version: ModelVersion
    versions: list[str]
    model: Model | None = None
    deployment: Deployment | None = None
    # Whether the answers may name the model and its versions: a deployment's model the caller may not view (a
    # public deployment of a private organization) is named by the deployment and its revision (``r<n>``) only.
    shows_model: bool = True

    def not_runnable(self, exc: NotRunnable) -> Conflict:
        if self.shows_model:
            return Conflict(str(exc))
        return Conflict(f"The deployment {self.deployment} cannot serve now: its version has not passed validation.")


def revision_name(number: int | None) -> str:
    """How the v2 API names a deployment's revision to a caller who may not see its model's versions."""
    return f"r{number or 0}"


def _published(model: Model):
    return (
        ModelVersion.objects.filter(model=model, status__in=(VersionStatus.PUBLISHED, VersionStatus.DEPRECATED))
        .select_related("model__organization")
        .order_by("-published_at", "-id")
    )


class ModelRouteView(ModelLookupMixin, DeploymentLookupMixin, KServeView):
    """Routes on one v2 model name (``model_name``, ``model_version`` in the URL)."""

    scope_for_action = {"view": TokenScope.READ, "run": TokenScope.RUN}

    def get_restrict_action(self) -> str:
        return "run" if self.request.method == "POST" else "view"

    def get_throttles(self):
        return [PredictThrottle()] if self.request.method == "POST" else super().get_throttles()

    def not_found(self, name: str) -> NotFoundV2:
        return NotFoundV2(
            f"No model “{name}” that you may view. Names are {{owner}}--{{model}} (acme--iris) for a catalog model "
            f"and {{org}}--{DEPLOYMENTS}--{{slug}} for a deployment."
        )

    def resolve(self, action: str) -> Target:
        """The model or deployment the URL names, if the caller may ``action`` it (404 / 403 otherwise)."""
        name, label = self.kwargs["model_name"], self.kwargs.get("model_version")
        parsed = parse_v2_name(name)
        if parsed is None:
            raise self.not_found(name)
        if parsed.deployment:
            return self._deployment_target(name, parsed, label, action)
        self.kwargs.update(owner=parsed.owner, name=parsed.name)
        try:  # one query when allowed, as the REST predict view does; viewable but not allowed: 403
            model = self.catalog_model if action == "view" else self.allowed_model(action)
        except Http404:
            raise self.not_found(name) from None
        published = _published(model)
        if label is None:
            version = published.filter(status=VersionStatus.PUBLISHED).first()
            if version is None:
                raise Conflict(f"{model} has no published version; name one (versions/{{label}}).")
            return Target(name, version, [item.label for item in published], model=model)
        visible = ModelVersion.objects.restrict(  # a draft: only for those who may change the model
            self.request.user, "view", within_organization=bound_organization_id(self.request)
        )
        version = visible.select_related("model__organization").filter(model=model, label=label).first()
        if version is None:
            raise NotFoundV2(f"The model “{name}” has no version “{label}”.")
        if action == "run":
            self.refuse_yanked(version, pinned=True)
        return Target(name, version, [version.label], model=model)

    def _deployment_target(self, name: str, parsed: V2Name, label: str | None, action: str) -> Target:
        self.kwargs.update(org_slug=parsed.owner, slug=parsed.name)
        try:
            deployment = self.deployment() if action == "view" else self.require_deployment(action)
        except Http404:
            raise self.not_found(name) from None
        if label is not None:
            raise refuse(
                "model_version",
                f"a deployment picks its own version; call {name} without versions/{label}",
                "unsupported",
            )
        main = deployment.version
        if main is None and deployment.alias:
            alias = (
                Alias.objects.filter(model=deployment.model, name=deployment.alias).select_related("version").first()
            )
            main = alias.version if alias else None
        if action == "run":
            try:
                version = services.serving_choice(deployment)
            except services.DeploymentPaused as exc:
                raise Conflict(str(exc)) from exc
        elif main is None:
            raise Conflict(f"The alias “{deployment.alias}” of {deployment.model} no longer exists.")
        else:
            version = main
        shows_model = bool(
            viewable_models(self.request.user, bound_organization_id(self.request), [deployment.model_id])
        )
        if not shows_model:
            return Target(name, version, [revision_name(deployment.revision)], deployment=deployment, shows_model=False)
        served = [item.label for item in (main, deployment.canary_version) if item is not None]
        return Target(name, version, list(dict.fromkeys(served)), deployment=deployment)


MODEL_PARAMETERS_NOTE = (
    "model_name: {owner}--{model} (a catalog model) or {org}--deployments--{slug} (a deployment); "
    "model_version: a version label of a catalog model."
)


class ModelMetadataView(ModelRouteView):
    """``GET /v2/models/{name}[/versions/{version}]``: the version's inputs and outputs in the protocol's terms."""

    @extend_schema(
        summary="KServe v2 model metadata",
        description=MODEL_PARAMETERS_NOTE,
        tags=["kserve"],
        responses={
            200: OpenApiTypes.OBJECT,
            404: OpenApiResponse(description="No such model or version, or you may not view it."),
            409: OpenApiResponse(description="No published version, or the version has not passed validation."),
        },
    )
    def get(self, request, model_name: str, model_version: str | None = None) -> HttpResponse:
        target = self.resolve("view")
        try:
            require_runnable(target.version)
        except NotRunnable as exc:
            raise target.not_runnable(exc) from exc
        signature = target.version.signature or {}
        return json_response(
            {
                "name": target.name,
                "versions": target.versions,
                "platform": PLATFORM,
                "inputs": tensor_metadata(signature.get("inputs") or []),
                "outputs": tensor_metadata(signature.get("outputs") or []),
            }
        )


class ModelReadyView(ModelRouteView):
    """``GET /v2/models/{name}[/versions/{version}]/ready``: 200 when it can run; 409 with the reason when not
    (not validated, yanked, a paused deployment, no published version)."""

    @extend_schema(
        summary="KServe v2 model readiness",
        description=MODEL_PARAMETERS_NOTE,
        tags=["kserve"],
        responses={
            200: OpenApiTypes.OBJECT,
            404: OpenApiResponse(description="No such model or version, or you may not view it."),
            409: OpenApiResponse(description="Not ready, with the reason."),
        },
    )
    def get(self, request, model_name: str, model_version: str | None = None) -> HttpResponse:
        target = self.resolve("view")
        if target.deployment is not None and target.deployment.status == DeploymentStatus.PAUSED:
            raise Conflict(f"The deployment {target.deployment} is paused.")
        if target.version.status == VersionStatus.YANKED:
            if not target.shows_model:
                raise Conflict(f"The deployment {target.deployment} serves a version that was yanked.")
            raise Conflict(f"Version “{target.version.label}” of {target.version.model} was yanked.")
        try:
            require_runnable(target.version)
        except NotRunnable as exc:
            raise target.not_runnable(exc) from exc
        return json_response({"name": target.name, "ready": True})


class ModelInferView(ModelRouteView):
    """``POST /v2/models/{name}[/versions/{version}]/infer``: run the model on a worker and answer its outputs."""

    @extend_schema(
        summary="KServe v2 inference",
        description=MODEL_PARAMETERS_NOTE,
        tags=["kserve"],
        request={JSON_TYPE: OpenApiTypes.OBJECT, BINARY_TYPE: OpenApiTypes.BINARY},
        responses={
            (200, JSON_TYPE): OpenApiTypes.OBJECT,
            (200, BINARY_TYPE): OpenApiTypes.BINARY,
            400: OpenApiResponse(description="The request is wrong: the error names the input and the reason."),
            401: OpenApiResponse(description="Sign in (a Bearer token with the run scope)."),
            403: OpenApiResponse(description="You may view the model but not run it."),
            404: OpenApiResponse(description="No such model or version, or you may not view it."),
            409: OpenApiResponse(description="Not ready: not validated, no published version, a paused deployment."),
            422: OpenApiResponse(description="The model failed (could not load, ran past its time limit, ...)."),
            504: OpenApiResponse(description="Not finished in time; it keeps running (its URL is in the error)."),
        },
    )
    def post(self, request, model_name: str, model_version: str | None = None) -> HttpResponse:
        from apps.inference.online.access import remembered

        target = remembered(request, ("kserve", model_name, model_version), lambda: self.resolve("run"))
        version = target.version
        if target.deployment is not None:  # the canary's share is drawn per request
            try:
                version = services.serving_choice(target.deployment)
            except services.DeploymentPaused as exc:
                raise Conflict(str(exc)) from exc
        try:
            require_runnable(version)
        except NotRunnable as exc:
            raise target.not_runnable(exc) from exc
        signature = version.signature or {}
        infer = read_infer_request(read_body(request), request.headers.get(HEADER_LENGTH), signature)
        prediction = PredictionInput(arrays=infer.arrays, encoding="json", items=items_of(signature, infer.arrays))
        timeout = infer.timeout if infer.timeout is not None else sync_timeout(None)
        order = [entry["name"] for entry in signature.get("outputs") or []]
        served = run_online(
            request,
            version,
            arrays=infer.arrays,
            items=prediction.items,
            deployment=target.deployment,
            shows_model=target.shows_model,
            timeout=timeout,
        )
        if served is not None:
            online, reply, revision = served
            return infer_response(
                model_name=target.name,
                model_version=version.label if target.shows_model else revision_name(revision and revision.number),
                request=infer,
                outputs=reply.outputs,
                order=order,
                parameters={"id": online.id, "provider": reply.header.get("provider")},
            )
        job, waited = submit_prediction(request, version, prediction, deployment=target.deployment, timeout=timeout)
        if waited is None:
            raise TimedOut(
                f"The prediction did not finish within {timeout:g} s; it keeps running, and its result will be at "
                f"/api/v1/predictions/{job.uuid}/."
            )
        outcome, payload = waited
        status = outcome.get("status", job.status)
        if status == JobStatus.FAILED:
            fields = outcome.get("error_fields") or job.inference.error_fields
            if fields:
                raise exceptions.ValidationError(fields)
            answer = answer_of(job, job.inference, outcome, shows_model=target.shows_model)
            raise RunFailed(answer.get("error") or "The prediction failed.")
        if status != JobStatus.SUCCEEDED:
            raise RunFailed(f"The prediction ended {status}.")
        result = outcome.get("result") if "result" in outcome else job.result or {}
        outputs = unpack_tensors(payload or job.inference.outputs)
        revision = job.inference.revision
        return infer_response(
            model_name=target.name,
            model_version=version.label if target.shows_model else revision_name(revision and revision.number),
            request=infer,
            outputs=outputs,
            order=order,
            parameters={"job": str(job.uuid), "provider": (result or {}).get("provider", job.inference.provider)},
        )


class UnsupportedView(KServeView):
    """Any other ``/v2/...`` route (model configuration, statistics, repository, shared memory, ...): a 404 in the
    protocol's JSON, so a client says why instead of failing to read an HTML page. A POST is judged as any write
    first (sign in, a token that may write), as everywhere in the API."""

    def _refuse(self, request) -> HttpResponse:
        raise NotFoundV2(
            f"{request.path} is not part of what this server supports: server metadata, health, model metadata, "
            "readiness and infer (with binary tensor data)."
        )

    @extend_schema(exclude=True)
    def get(self, request, rest: str = "") -> HttpResponse:
        return self._refuse(request)

    @extend_schema(exclude=True)
    def post(self, request, rest: str = "") -> HttpResponse:
        return self._refuse(request)
